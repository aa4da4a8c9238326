#!/bin/sh
# nightly backup, runs from cron on backup01
set -e

STAMP=$(date +%Y%m%d-%H%M)
DEST=/srv/backups/${STAMP}
mkdir -p "$DEST"

PGPASSWORD='pgB4ckup!Night-772' pg_dump -h pg-primary.internal -U backup -Fc billing > "$DEST/billing.dump"

mysqldump --host=mysql01.internal --user=backup --password=My5qlDump#Ops-2024 --single-transaction --all-databases | gzip > "$DEST/mysql.sql.gz"

AWS_ACCESS_KEY_ID=AKIA35IA5LAYKZ6KCPH7 AWS_SECRET_ACCESS_KEY=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 \
  aws s3 sync "$DEST" "s3://acme-backups/$(hostname)/${STAMP}/" --sse AES256

find /srv/backups -maxdepth 1 -type d -mtime +14 -exec rm -rf {} +
