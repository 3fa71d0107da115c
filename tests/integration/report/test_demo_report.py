"""``inferencefleet demo`` end to end: the printed verdicts, summary.json, and report.html as Chromium shows it."""

from __future__ import annotations

import contextlib
import io
import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from inferencefleet.cli import main

from .browser import rendered_dom, screenshot

REPO = Path(__file__).resolve().parents[3]
POOLS = ("llama3-70b-premium", "mixtral-trtllm-standard", "llama3-8b-free")
TIERS = ("premium", "standard", "free")
POLICIES = ("inferencefleet", "hpa", "keda", "static")


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """Run the demo once; (output directory, what it printed)."""
    out = tmp_path_factory.mktemp("demo")
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert main(["demo", "--out", str(out)]) == 0
    return out, printed.getvalue()


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.images: list[dict[str, str]] = []
        self.verdict = ""
        self._in_verdict = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "img":
            self.images.append(values)
        self._in_verdict = values.get("id") == "verdict" or self._in_verdict

    def handle_endtag(self, tag: str) -> None:
        if tag == "p":
            self._in_verdict = False

    def handle_data(self, data: str) -> None:
        if self._in_verdict:
            self.verdict += data


def test_the_demo_validates_and_renders_the_examples(ran: tuple[Path, str]) -> None:
    out, printed = ran
    for path in sorted((REPO / "policies" / "examples").glob("*.yaml")):
        body = yaml.safe_load(path.read_text())
        if body["kind"] == "InferencePool":
            assert body["metadata"]["name"] in printed
    assert "16 x H100-80GB" in printed  # DeepSeek: TP8 x PP2 on 2 nodes
    assert "$24.00 .. $144.00" in printed  # 70B: 2..12 replicas x 4 GPUs x $3
    assert "$3.00 .. $24.00" in printed  # 8B free: 1..8 x 1 x $3
    rendered = list(yaml.safe_load_all((out / "llama3-8b-free.rendered.yaml").read_text()))
    assert [o["kind"] for o in rendered] == ["Deployment", "Service", "PodDisruptionBudget", "PodMonitor"]
    assert f"report: {out / 'report.html'}" in " ".join(printed.split())


def test_the_terminal_prints_one_verdict_per_policy(ran: tuple[Path, str]) -> None:
    out, printed = ran
    summary = json.loads((out / "summary.json").read_text())
    assert [p["policy"] for p in summary["policies"]] == list(POLICIES)
    text = " ".join(printed.split())
    for name in ("inferencefleet", "HPA", "KEDA", "static peak"):
        assert re.search(rf"{name} [\d.]+ \$[\d,.]+ [\d.]+%", text), f"no verdict row for {name}"
    for tier in TIERS:
        assert tier in text
    assert " ".join(summary["verdict"].split()) in text
    for entry in summary["policies"]:
        assert entry["dollars"] == pytest.approx(entry["gpu_hours"] * 3.0, rel=1e-4)  # every GPU an H100 at $3/h
        assert set(entry["tiers"]) == set(TIERS)
        assert entry["dollars_per_million_tokens_within_slo"] > 0


def test_the_tiers_contend_and_free_gives_back_first(ran: tuple[Path, str]) -> None:
    out, _ = ran
    html = (out / "report.html").read_text()
    assert "When the quota held this tier back" in html
    summary = json.loads((out / "summary.json").read_text())
    assert summary["policies"][0]["policy"] == "inferencefleet"
    free_section = html[html.index("<h2>Tier free</h2>"):html.index("<h2>Pool ")]
    assert "TierBudgetExhausted" in free_section or "capped at" in free_section
    premium_section = html[html.index("<h2>Tier premium</h2>"):html.index("<h2>Tier standard</h2>")]
    assert "The quota never held this tier's pools below what they asked for" in premium_section


def test_every_pool_lists_the_planners_decisions_with_their_reasons(ran: tuple[Path, str]) -> None:
    out, _ = ran
    html = (out / "report.html").read_text()
    for pool in POOLS:
        section = html[html.index(f"<h2>Pool serving/{pool}"):]
        table = section[:section.index("</details>")]
        assert re.search(r"\d+ decisions of inferencefleet on this pool", table), pool
        reasons = re.findall(r"<tr title='([^']+)'>", table)
        assert reasons and all("forecast" in r or "max-num-seqs" in r.lower() for r in reasons), pool


def test_chromium_shows_the_verdict_and_every_plot(ran: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = ran
    summary = json.loads((out / "summary.json").read_text())
    page = _Page()
    page.feed(rendered_dom(out / "report.html", tmp_path))
    assert " ".join(page.verdict.split()) == " ".join(summary["verdict"].split())
    expected = {"fleet.png"} | {f"tier-{t}.png" for t in TIERS} | {f"pool-{p}.png" for p in POOLS}
    assert {image["data-file"] for image in page.images} == expected
    for image in page.images:
        width, height = (int(v) for v in image["data-rendered"].split("x"))
        assert width > 400 and height > 200, f"{image['data-file']} did not render: {image['data-rendered']}"
        assert image["alt"], f"{image['data-file']} has no caption"
    shot = screenshot(out / "report.html", tmp_path, tmp_path / "report.png", height=900)
    assert shot.stat().st_size > 20_000  # a blank page compresses to a few kilobytes
