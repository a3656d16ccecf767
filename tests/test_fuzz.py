"""Schemathesis against GET /openapi.json on a running lynkr: no 5xx and no crash, for every operation.

lynkr serves on a real loopback port with client keys and the admin key set; the backend is a fake that
answers every request well, so any 5xx is lynkr's own. The run is bounded (a few examples per operation,
no shrinking) to keep the suite fast.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from pathlib import Path

import pytest

from lynkr.server import create_app
from tests.conftest import make_settings
from tests.fakes import steady_openai

ADMIN = "sk-fuzz-admin-000000"
ST = Path(sys.executable).with_name("st")
EXAMPLES = os.environ.get("LYNKR_FUZZ_EXAMPLES", "8")

pytestmark = pytest.mark.skipif(not ST.exists() and shutil.which("st") is None,
                                reason="schemathesis is not installed (pip install -e '.[test]')")


async def test_schemathesis_finds_no_server_error(aiohttp_server, tmp_path):
    upstream = await aiohttp_server(steady_openai.make_app())
    url = str(upstream.make_url("")).rstrip("/")
    settings = make_settings(model_provider="openai", openai_api_key="sk-up",
                             openai_endpoint=url + "/v1/chat/completions",
                             lynkr_api_keys="sk-fuzz-client-00000", lynkr_admin_key=ADMIN, prompt_cache_enabled=True,
                             lynkr_data_dir=tmp_path / "data")
    server = await aiohttp_server(create_app(settings))
    base = str(server.make_url("")).rstrip("/")
    report = tmp_path / "report"
    proc = await asyncio.create_subprocess_exec(
        str(ST) if ST.exists() else "st", "run", f"{base}/openapi.json", "--checks", "not_a_server_error",
        "--max-examples", EXAMPLES, "--phases", "examples,coverage,fuzzing", "--no-shrink", "--seed", "1",
        "--generation-database", "none", "--workers", "1", "--request-timeout", "20",
        "-H", f"Authorization: Bearer {ADMIN}", "--report", "junit", "--report-dir", str(report), "--no-color",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=tmp_path,
        env=dict(os.environ))
    out, _ = await asyncio.wait_for(proc.communicate(), timeout=600)
    text = out.decode(errors="replace")
    assert proc.returncode == 0, text[-6000:]
    assert "not_a_server_error" in text or "passed" in text.lower(), text[-3000:]
    # still alive and well after the run
    import aiohttp

    async with aiohttp.ClientSession() as http, http.get(base + "/health") as resp:
        assert resp.status == 200
