#!/bin/sh
docker run -d --name pg \
  -e POSTGRES_PASSWORD=R4n-Pg!docker#55 \
  -e PGDATA=/var/lib/postgresql/data/pgdata \
  postgres:16
docker run -d --name api --env API_TOKEN=Q4Zh6HsEj2t2Zccul7Lf5HXBdzm7Cp4j --env-file .env acme/api:latest
mysql -h 127.0.0.1 -u root -pr00t-Mysql!cli42 -e 'show databases'
sshpass -p 'Ssh-Pass!bastion9' ssh ops@bastion.acme.internal
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-}"
