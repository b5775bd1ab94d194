"""app/common/migrate.py sqlalchemy_url: the cluster's DSN (sslmode=verify-full, sslrootcert)
reaches asyncpg with the server verified against that root certificate alone."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from app.common.migrate import sqlalchemy_url

HOST = "its-postgres-pooler-rw.data.svc"


@pytest.fixture(scope="module")
def root_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real self-signed CA certificate (P-256), made by openssl."""
    openssl = shutil.which("openssl")
    assert openssl, "openssl is needed to make a CA certificate"
    directory = tmp_path_factory.mktemp("ca")
    cert = directory / "ca.crt"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(directory / "ca.key"),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=its-test-ca",
        ],
        check=True,
        capture_output=True,
    )
    return cert


def test_verify_full_becomes_a_context_trusting_the_root_cert_and_checking_the_host(root_cert: Path) -> None:
    url, connect_args = sqlalchemy_url(
        f"postgresql://its_migrator:pw@{HOST}:5432/its?sslmode=verify-full&sslrootcert={root_cert}"
    )
    parsed = make_url(url)
    assert parsed.drivername == "postgresql+asyncpg"
    assert (parsed.username, parsed.password, parsed.host, parsed.database) == (
        "its_migrator",
        "pw",
        HOST,
        "its",
    )
    # Neither libpq word is left for asyncpg.connect(), which knows neither keyword.
    assert dict(parsed.query) == {}
    context = connect_args["ssl"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    # Only the root certificate of the URL is trusted, not the system's store.
    subjects = [str(ca["subject"]) for ca in context.get_ca_certs()]
    assert len(subjects) == 1 and "its-test-ca" in subjects[0]


def test_verify_ca_checks_the_chain_but_not_the_host(root_cert: Path) -> None:
    _, connect_args = sqlalchemy_url(f"postgresql://u:p@{HOST}/its?sslmode=verify-ca&sslrootcert={root_cert}")
    context = connect_args["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is False


def test_a_missing_root_cert_fails_instead_of_trusting_anything(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        sqlalchemy_url(f"postgresql://u:p@{HOST}/its?sslmode=verify-full&sslrootcert={tmp_path / 'none.crt'}")


@pytest.mark.parametrize("mode", ["disable", "prefer", "require"])
def test_other_modes_pass_through_as_asyncpg_s_ssl(mode: str) -> None:
    url, connect_args = sqlalchemy_url(f"postgresql://u:p@localhost:5432/its?sslmode={mode}")
    assert dict(make_url(url).query) == {"ssl": mode} and connect_args == {}


def test_a_url_without_tls_words_is_unchanged() -> None:
    assert sqlalchemy_url("postgresql://u:p@localhost:5432/its") == (
        "postgresql+asyncpg://u:p@localhost:5432/its",
        {},
    )
