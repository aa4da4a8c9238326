import logging
import os

import pandas as pd
from sqlalchemy import create_engine, text

log = logging.getLogger(__name__)

WAREHOUSE_URL = "postgresql+psycopg2://etl_writer:GlqNDPNgVh.ZZEN7@warehouse.analytics.internal:5432/dwh"
SOURCE_URL = os.environ["SOURCE_DB_URL"]
REDIS_URL = os.getenv("REDIS_URL", "redis://localhost:6379/0")


def load(table: str, frame: pd.DataFrame) -> int:
    engine = create_engine(WAREHOUSE_URL, pool_pre_ping=True)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE staging.{table}"))
        frame.to_sql(table, conn, schema="staging", if_exists="append", index=False)
    log.info("loaded %d rows into staging.%s", len(frame), table)
    return len(frame)


def extract(query: str) -> pd.DataFrame:
    engine = create_engine(SOURCE_URL)
    return pd.read_sql(query, engine)
