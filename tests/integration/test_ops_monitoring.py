"""Issue 5: operations see every component's lag, rate and failures — in /metrics, /readyz,
/ops/* and `kosh status` — and none of it carries personal data."""

from __future__ import annotations

import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
from kafka import KafkaProducer
from rich.console import Console

from api.status import run_status
from infra.settings import Settings
from tests.conftest import make_settings
from tests.support.builders import iin_for, registration_body
from tests.support.system import REPO, KoshProcess, settings_env, wait_until


def metric(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, matched by name and some labels."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split(" ")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def lag_of(api: httpx.Client, projection: str = "residents") -> int:
    rows = api.get("/ops/projections").json()["projections"]
    return next(r["lag"] for r in rows if r["projection"] == projection)


def test_stopped_projection_lags_and_readyz_turns_not_ready_until_it_catches_up(
    tmp_path: Path, kafka_bootstrap: str,
) -> None:
    settings = make_settings(tmp_path, kafka_bootstrap, ready_max_lag=3)
    front = KoshProcess(settings, roles="api,publisher,intake", name="front").start()
    projections = KoshProcess(settings, roles="projections", name="projections").start()
    api = front.client(timeout=10)
    try:
        # Start-up stored the legal-act registry; let the projections take it first.
        wait_until(lambda: lag_of(api) == 0, what="the seeded legal acts to be applied")
        seeded = metric(api.get("/metrics").text, "kosh_store_head_sequence")
        ready = api.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["broker"]["ok"] and ready.json()["checks"]["store"]["ok"]
        before = api.get("/metrics").text

        assert projections.stop() == 0
        for n in range(5):
            assert api.post("/registrations", json=registration_body(n)).status_code == 201
        wait_until(lambda: lag_of(api) == 5, what="lag to show the 5 unapplied events")
        not_ready = api.get("/readyz")
        assert not_ready.status_code == 503
        assert not_ready.json()["failed"] == ["projections"]
        assert not_ready.json()["checks"]["projections"]["behind"]["projection:residents"] == 5
        during = api.get("/metrics").text
        assert metric(during, "kosh_component_lag_events", component="projection:residents") \
            == 5
        assert metric(during, "kosh_store_head_sequence") == seeded + 5
        wait_until(lambda: metric(api.get("/metrics").text, "kosh_component_lag_events",
                                  component="publisher") == 0, what="publisher to catch up")

        restarted = KoshProcess(settings, roles="projections", name="projections-2").start()
        try:
            wait_until(lambda: api.get("/readyz").status_code == 200, timeout=20,
                       what="readiness after catching up")
            assert lag_of(api) == 0
        finally:
            assert restarted.stop() == 0
        after = api.get("/metrics").text
        assert metric(after, "kosh_projection_applied_sequence", projection="residents") == \
            seeded + 5
        posts = dict(method="POST", route="/registrations", status="201")
        assert (metric(after, "kosh_http_request_duration_seconds_count", **posts) or 0) - \
            (metric(before, "kosh_http_request_duration_seconds_count", **posts) or 0) == 5
        assert (metric(after, "kosh_component_events_per_second",
                       component="projection:residents") or 0) > 0
    finally:
        front.stop()
        projections.stop()


def test_ops_views_status_and_dead_letters_carry_no_personal_data(settings: Settings) -> None:
    system = KoshProcess(settings).start()
    api = system.client(timeout=10)
    try:
        iins = [iin_for(n) for n in range(20)]
        for n in range(10):
            case = api.post("/registrations", json=registration_body(n)).json()["case_id"]
            api.post(f"/registrations/{case}/approve")
        producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
        bad = registration_body(15)
        bad["person"]["iin"] = iins[15][:11] + "x"
        for value in (
            json.dumps({"command_id": "k1", "command_type": "submit_registration",
                        "payload": bad}).encode(),
            b"not json " + iins[16].encode(),
        ):
            producer.send(settings.commands_topic, key=iins[17].encode(), value=value)
        producer.flush()
        producer.close()
        wait_until(lambda: len(api.get("/ops/dead-letters").json()["dead_letters"]) == 2,
                   timeout=20, what="two dead letters")
        wait_until(lambda: lag_of(api) == 0, timeout=20, what="projection to catch up")

        views = [api.get(path).text for path in (
            "/metrics", "/readyz", "/ops/projections", "/ops/components", "/ops/dead-letters",
            "/ops/parked")]
        out = io.StringIO()
        assert run_status(settings, watch=False, interval_s=0.1,
                          console=Console(file=out, width=200)) == 0
        status = out.getvalue()
        assert "projection:residents" in status and "publisher" in status
        assert "intake" in status
        everything = "\n".join([*views, status])
        assert not [i for i in iins if i in everything]
        assert "Family" not in everything and "Given" not in everything
    finally:
        assert system.stop() == 0, system.log()[-2000:]


def test_kosh_status_watch_refreshes_until_interrupted(settings: Settings) -> None:
    out_path = Path(settings.data_dir) / "status.out"
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with open(out_path, "wb") as out:
        watcher = subprocess.Popen(
            [sys.executable, "-m", "api.cli", "status", "--watch", "--interval", "0.2"],
            cwd=REPO, env={**settings_env(settings), "COLUMNS": "200"}, stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: out_path.read_text().count("store head") >= 3, timeout=30,
                   what="three refreshes")
        watcher.send_signal(signal.SIGINT)
        watcher.wait(timeout=20)
    finally:
        if watcher.poll() is None:
            watcher.kill()
    output = out_path.read_text()
    assert watcher.returncode == 0, output
    assert "publisher" in output and "projection:residents" in output


def test_asyncapi_document_lists_every_topic_and_message(settings: Settings) -> None:
    system = KoshProcess(settings, roles="api").start()
    api = system.client(timeout=10)
    try:
        doc = api.get("/asyncapi.json").json()
        addresses = {c["address"] for c in doc["channels"].values()}
        assert addresses == {settings.events_topic, settings.commands_topic,
                             settings.results_topic, settings.dead_letter_topic}
        schemas = set(doc["components"]["schemas"])
        assert {"CommandEnvelope", "CommandResult", "EventMessage"} <= schemas
        page = api.get("/asyncapi")
        assert page.status_code == 200 and "AsyncApiStandalone" in page.text
    finally:
        assert system.stop() == 0
