-- bootstrap roles for the reporting stack
CREATE ROLE reporting_ro WITH LOGIN PASSWORD 'Rep0rt-RO!sql#2024';
CREATE ROLE etl_writer WITH LOGIN PASSWORD 'etl-Wr1ter!Load#88' VALID UNTIL '2026-01-01';
GRANT CONNECT ON DATABASE dwh TO reporting_ro;
GRANT USAGE ON SCHEMA mart TO reporting_ro;
GRANT SELECT ON ALL TABLES IN SCHEMA mart TO reporting_ro;

CREATE USER 'grafana'@'%' IDENTIFIED BY 'Gr4fana-My!sql77';
GRANT SELECT ON metrics.* TO 'grafana'@'%';

-- password is set by the operator at deploy time
CREATE ROLE app_rw WITH LOGIN PASSWORD NULL;
ALTER ROLE app_rw SET statement_timeout = '30s';
