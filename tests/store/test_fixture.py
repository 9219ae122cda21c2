"""The PostgreSQL test fixture itself: a real server, local only, fresh migrated databases."""

import pytest

from store.db import StoreError, connect
from store.migrate import head_revision


@pytest.mark.postgres
def test_postgres_url_is_a_fresh_migrated_database(postgres_url):
    conn = connect(postgres_url)
    try:
        assert conn.one("SELECT version_num FROM alembic_version")[0] == head_revision()
        assert conn.one("SELECT count(*) FROM events")[0] == 0
        conn.execute("INSERT INTO accounts (username) VALUES ('only-in-this-test')")
        conn.commit()
    finally:
        conn.close()


@pytest.mark.postgres
def test_each_test_gets_its_own_database(postgres_url):
    conn = connect(postgres_url)
    try:
        assert conn.one("SELECT count(*) FROM accounts")[0] == 0
    finally:
        conn.close()


@pytest.mark.postgres
def test_server_listens_on_loopback_only(postgres_server):
    conn = postgres_server.connect()
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW listen_addresses")
            assert cur.fetchone()[0] == "127.0.0.1"
            cur.execute("SELECT inet_server_addr()")
            assert str(cur.fetchone()[0]) == "127.0.0.1"
    finally:
        conn.close()


@pytest.mark.postgres
def test_pause_makes_the_store_unreachable_and_resume_brings_it_back(postgres_server):
    url = postgres_server.create_database()
    postgres_server.pause()
    try:
        with pytest.raises(StoreError):
            connect(url, timeout=1)
    finally:
        postgres_server.resume()
    connect(url).close()
