"""``robustness data download`` against loopback servers: a fake PMC bucket (ListObjectsV2 + objects),
a legacy ``.tar.gz`` mirror and a fake Hugging Face hub. No network beyond 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import tarfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, unquote, urlsplit
from xml.sax.saxutils import escape

import pytest
from PIL import Image

from robustness.commands import data_download
from robustness.data import download
from robustness.data.image_sources import ImageJob, SourceMiss, as_jpeg, parse_list_objects_v2
from robustness.data.mediconfusion import load_benchmark
from tests.helpers.paths import ROOT
from tests.helpers.records import make_pair_record

REPO = "shahab7899/MediConfusion"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"

Reply = tuple[int, dict[str, str], bytes]


# ------------------------------------------------------------------------------ loopback servers

class Loopback:
    """An HTTP server on 127.0.0.1 (random port) in a thread; ``route`` answers each request."""

    def __init__(self, route: Callable[[str, str, dict[str, list[str]]], Reply]) -> None:
        self.requests: list[tuple[str, str, dict[str, list[str]]]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, send_body: bool) -> None:
                parts = urlsplit(self.path)
                query = parse_qs(parts.query, keep_blank_values=True)
                owner.requests.append((self.command, unquote(parts.path), query))
                status, headers, body = route(self.command, unquote(parts.path), query)
                self.send_response(status)
                headers = {"Content-Length": str(len(body)), **headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                if send_body:
                    self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802 (http.server naming)
                self._answer(True)

            def do_HEAD(self) -> None:  # noqa: N802
                self._answer(False)

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def paths(self, method: str = "GET") -> list[str]:
        return [p for m, p, _ in self.requests if m == method]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class FakeBucket:
    """S3 semantics we rely on: ListObjectsV2 with prefix/delimiter (one prefix per page, so the
    continuation token is exercised), objects with an MD5 ETag, and scripted transient faults."""

    objects: dict[str, bytes]
    faults: dict[str, list[int]] = field(default_factory=dict)  # key -> statuses to answer first

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        if path == "/" and query.get("list-type") == ["2"]:
            return self._list(query)
        key = path.lstrip("/")
        if self.faults.get(key):
            return self.faults[key].pop(0), {}, b"try again"
        if key not in self.objects:
            return 404, {"Content-Type": "application/xml"}, b"<Error><Code>NoSuchKey</Code></Error>"
        body = self.objects[key]
        return 200, {"ETag": f'"{hashlib.md5(body).hexdigest()}"'}, body

    def _list(self, query: dict[str, list[str]]) -> Reply:
        prefix = query.get("prefix", [""])[0]
        delimiter = query.get("delimiter", [""])[0]
        after = query.get("continuation-token", [""])[0]
        commons = sorted({prefix + k[len(prefix):].split(delimiter)[0] + delimiter
                          for k in self.objects if k.startswith(prefix) and delimiter
                          and delimiter in k[len(prefix):]})
        remaining = [c for c in commons if c > after]
        page, more = remaining[:1], len(remaining) > 1
        xml = [f'<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="{S3_NS}">',
               f"<Name>pmc-oa-opendata</Name><Prefix>{escape(prefix)}</Prefix>",
               f"<KeyCount>{len(page)}</KeyCount><MaxKeys>1</MaxKeys>",
               f"<Delimiter>{escape(delimiter)}</Delimiter><IsTruncated>{str(more).lower()}</IsTruncated>"]
        xml += [f"<CommonPrefixes><Prefix>{escape(c)}</Prefix></CommonPrefixes>" for c in page]
        if more:
            xml.append(f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>")
        xml.append("</ListBucketResult>")
        return 200, {"Content-Type": "application/xml"}, "".join(xml).encode()


@dataclass
class FakeStatic:
    """Plain files by path (the legacy package mirror)."""

    files: dict[str, bytes]

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        if path in self.files:
            return 200, {"Content-Type": "application/gzip"}, self.files[path]
        return 404, {}, b"not found"


@dataclass
class FakeHub:
    """The routes ``hf_hub_download`` uses: HEAD and GET ``/datasets/<repo>/resolve/<rev>/<file>``
    answered with ``X-Repo-Commit`` and ``ETag``; unknown revisions and files get the hub's
    ``X-Error-Code`` so the client raises its typed errors."""

    files: dict[str, bytes]
    commit: str = COMMIT

    def route(self, method: str, path: str, query: dict[str, list[str]]) -> Reply:
        head = f"/datasets/{REPO}/resolve/"
        if not path.startswith(head):
            return 404, {"X-Error-Code": "RepoNotFound"}, b"repository not found"
        revision, _, name = path[len(head):].partition("/")
        if revision not in ("main", self.commit):
            return 404, {"X-Error-Code": "RevisionNotFound"}, b"revision not found"
        if name not in self.files:
            return 404, {"X-Error-Code": "EntryNotFound", "X-Repo-Commit": self.commit}, b"no entry"
        body = self.files[name]
        return 200, {"X-Repo-Commit": self.commit, "ETag": f'"{hashlib.sha1(body).hexdigest()}"',
                     "Content-Type": "application/json"}, body


# -------------------------------------------------------------------------------------- fixtures

def jpeg_bytes(seed: int, size: int = 24) -> bytes:
    img = Image.new("RGB", (size, size), ((seed * 40) % 256, (seed * 90) % 256, (seed * 20) % 256))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=90)
    return out.getvalue()


def png_bytes(seed: int) -> bytes:
    img = Image.new("RGBA", (20, 20), (seed % 256, 10, 200, 128))
    out = io.BytesIO()
    img.save(out, format="PNG")
    return out.getvalue()


def tar_gz(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


# Six images over four pairs; 101 appears in two pairs, 102 and 103 come from one article.
IMAGES = {
    # local id: (pmcid, file name, where it lives)
    "101": ("PMC100", "fig-101.jpg", "bucket, versions 1 and 2 (different bytes)"),
    "102": ("PMC200", "fig-102.jpg", "bucket"),
    "103": ("PMC200", "fig 103.jpg", "bucket (a space in its name)"),
    "104": ("PMC300", "fig-104.jpg", "legacy package only"),
    "105": ("PMC400", "fig-105.jpg", "ROCO only"),
    "106": ("PMC500", "fig-106.png", "bucket, PNG (converted)"),
}
PAIRS = {"10001": ("101", "102"), "10002": ("101", "103"), "10003": ("104", "105"),
         "10004": ("106", "102")}
LEGACY_PATH = "/pub/oa_package/ab/cd/PMC300.tar.gz"


def roco_ref(local_id: str) -> str:
    return f"train/radiology/images/ROCO_{local_id}.jpg"


@dataclass
class World:
    hub: Loopback
    bucket: Loopback
    legacy: Loopback
    fake_bucket: FakeBucket
    roco: Path
    cache: Path
    content: dict[str, bytes]  # the bytes each source serves, by local id
    legacy_files: dict[str, bytes]  # what the legacy mirror serves, by path

    def argv(self, out: Path, *extra: str, roco: bool = True) -> list[str]:
        argv = ["--out", str(out), "--hf-endpoint", self.hub.url, "--cache-dir", str(self.cache),
                "--bucket-url", self.bucket.url, "--legacy-base", self.legacy.url + "/pub/oa_package",
                "--backoff", "0", "--retries", "2", "--timeout", "10", "--quiet", "--workers", "3"]
        if roco:
            argv += ["--roco-dir", str(self.roco)]
        return argv + list(extra)


@pytest.fixture
def world(tmp_path, monkeypatch) -> World:
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)  # a CI machine may set it globally
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    for name in (download.ENV_BUCKET, download.ENV_LEGACY, download.ENV_ROCO):
        monkeypatch.delenv(name, raising=False)

    dataset = {}
    for i, (pid, (a, b)) in enumerate(PAIRS.items()):
        rec = make_pair_record("A" if i % 2 == 0 else "B", "B" if i % 2 == 0 else "A",
                               cats1=("Cerebral", "Vascular"), cats2=("Spinal",))
        rec.update(im_1=roco_ref(a), im_2=roco_ref(b), im_1_local=int(a), im_2_local=int(b))
        dataset[pid] = rec
    image_dict = {roco_ref(lid): {"local": int(lid), "file_name": name,
                                  "dlink": f"ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package/"
                                           f"{'ab/cd' if pmcid == 'PMC300' else '0f/1e'}/{pmcid}.tar.gz"}
                  for lid, (pmcid, name, _) in IMAGES.items()}

    content = {lid: jpeg_bytes(int(lid)) for lid in IMAGES}
    content["106"] = png_bytes(106)
    objects = {"PMC100.1/fig-101.jpg": jpeg_bytes(999),  # an older version: must not be chosen
               "PMC100.1/PMC100.1.xml": b"<article/>",
               "PMC100.2/fig-101.jpg": content["101"],
               "PMC100.2/PMC100.2.xml": b"<article/>",
               "PMC1000.1/fig-101.jpg": jpeg_bytes(998),  # PMC1000 must not match prefix "PMC100."
               "PMC200.1/fig-102.jpg": content["102"],
               "PMC200.1/fig 103.jpg": content["103"],
               "PMC500.1/fig-106.png": content["106"]}
    fake_bucket = FakeBucket(objects)
    legacy_files = {LEGACY_PATH: tar_gz({"PMC300/PMC300.nxml": b"<article/>",
                                         "PMC300/fig-104.jpg": content["104"]})}
    roco = tmp_path / "roco"
    (roco / "train/radiology/images").mkdir(parents=True)
    (roco / roco_ref("105")).write_bytes(content["105"])

    hub_files = {"dataset.json": json.dumps(dataset).encode(),
                 "image_dict.json": json.dumps(image_dict).encode()}
    servers = [Loopback(FakeHub(hub_files).route), Loopback(fake_bucket.route),
               Loopback(FakeStatic(legacy_files).route)]
    yield World(*servers, fake_bucket=fake_bucket, roco=roco, cache=tmp_path / "hub-cache",
                content=content, legacy_files=legacy_files)
    for server in servers:
        server.close()


def manifest(out: Path) -> dict:
    return json.loads((out / "manifest.json").read_text())


# ----------------------------------------------------------------------------------------- tests

def test_every_source_in_order_and_the_benchmark_loads(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0

    images = manifest(out)["images"]
    assert {lid: images[lid]["source"] for lid in IMAGES} == {
        "101": "bucket", "102": "bucket", "103": "bucket", "104": "legacy", "105": "roco",
        "106": "bucket"}
    for lid in ("101", "102", "103", "104", "105"):  # JPEG kept byte for byte
        assert (out / "images" / f"{lid}.jpg").read_bytes() == world.content[lid]
        assert images[lid]["converted"] is False
    with Image.open(out / "images" / "106.jpg") as img:  # PNG converted to JPEG
        assert img.format == "JPEG" and img.size == (20, 20)
    assert images["106"]["converted"] is True
    for lid, rec in images.items():
        assert rec["sha256"] == hashlib.sha256((out / rec["file"]).read_bytes()).hexdigest()
    assert not manifest(out)["failures"]

    bench = load_benchmark(out / "dataset.json", require_images=True)
    assert len(bench) == 4 and bench.pair("10001").images[0].name == "101.jpg"
    stats = json.loads((out / "statistics.json").read_text())
    assert stats == bench.category_counts == {"Cerebral": 4, "Vascular": 4, "Spinal": 4}
    assert manifest(out)["commit"] == COMMIT
    assert manifest(out)["annotations"]["dataset.json"]["source"].endswith(f"@{COMMIT}/dataset.json")
    assert not (out / ".download-tmp").exists()


def test_bucket_lists_versions_by_prefix_and_fetches_only_the_newest(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0
    listings = [q for m, p, q in world.bucket.requests if p == "/" and q.get("list-type") == ["2"]]
    first_page = [q for q in listings if q["prefix"] == ["PMC100."] and "continuation-token" not in q]
    assert first_page and first_page[0]["delimiter"] == ["/"]
    assert any(q.get("continuation-token") for q in listings if q["prefix"] == ["PMC100."])
    # one listing per article even though two images come from PMC200 (memoised)
    assert sum(1 for q in listings if q["prefix"] == ["PMC200."]) == 1
    fetched = world.bucket.paths()
    assert "/PMC100.2/fig-101.jpg" in fetched
    assert "/PMC100.1/fig-101.jpg" not in fetched and "/PMC1000.1/fig-101.jpg" not in fetched
    assert "/PMC200.1/fig 103.jpg" in fetched
    assert not any(p.endswith(".xml") for p in fetched)  # only the named figure
    assert manifest(out)["images"]["101"]["location"].endswith("/PMC100.2/fig-101.jpg")


def test_older_version_used_when_the_newest_lacks_the_figure(world, tmp_path):
    del world.fake_bucket.objects["PMC100.2/fig-101.jpg"]
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0
    assert manifest(out)["images"]["101"]["location"].endswith("/PMC100.1/fig-101.jpg")
    assert (out / "images/101.jpg").read_bytes() == jpeg_bytes(999)


def test_tarball_fallback_after_a_bucket_miss_extracts_only_the_figure(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0
    assert any(q.get("prefix") == ["PMC300."] for _, _, q in world.bucket.requests)  # bucket first
    # the mirror is asked only for articles the bucket lacks, each package fetched once
    assert sorted(world.legacy.paths()) == ["/pub/oa_package/0f/1e/PMC400.tar.gz", LEGACY_PATH]
    rec = manifest(out)["images"]["104"]
    assert rec["source"] == "legacy" and rec["location"].endswith("#PMC300/fig-104.jpg")
    assert sorted((out / "images").iterdir()) == sorted(out / "images" / f"{i}.jpg" for i in IMAGES)


def test_sources_flag_sets_the_order(world, tmp_path, capsys):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out, "--sources", "roco,bucket")) == 1  # 104 is only in legacy
    assert world.legacy.requests == []
    assert manifest(out)["images"]["105"]["source"] == "roco"
    err = capsys.readouterr().err
    assert "104 (PMC300/fig-104.jpg): roco: " in err and "bucket: no versions listed" in err


def test_missing_images_are_summarised_with_exit_1(world, tmp_path, capsys):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out, roco=False)) == 1
    err = capsys.readouterr().err
    assert "1 image(s) missing" in err and "105 (PMC400/fig-105.jpg)" in err
    assert "bucket: no versions listed under prefix PMC400." in err
    assert "legacy: HTTP 404" in err
    failures = manifest(out)["failures"]
    assert set(failures) == {"105"} and set(failures["105"]["reasons"]) == {"bucket", "legacy"}
    assert not (out / "images/105.jpg").exists() and (out / "images/104.jpg").is_file()

    # the re-run with the ROCO checkout fetches only what is missing
    before = len(world.bucket.requests)
    assert data_download.main(world.argv(out)) == 0
    assert manifest(out)["images"]["105"]["source"] == "roco"
    assert not manifest(out)["failures"]
    assert all(q.get("prefix") == ["PMC400."] for _, _, q in world.bucket.requests[before:])


def test_rerun_skips_verified_files(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0
    stamp = {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()}
    bucket_before, legacy_before = len(world.bucket.requests), len(world.legacy.requests)
    assert data_download.main(world.argv(out)) == 0
    assert len(world.bucket.requests) == bucket_before and len(world.legacy.requests) == legacy_before
    assert {p.name: p.stat().st_mtime_ns for p in (out / "images").iterdir()} == stamp


def test_corrupted_file_is_downloaded_again(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0
    (out / "images/102.jpg").write_bytes(b"\xff\xd8 truncated")
    (out / "images/104.jpg").unlink()
    before = len(world.bucket.requests)
    assert data_download.main(world.argv(out)) == 0
    assert (out / "images/102.jpg").read_bytes() == world.content["102"]
    assert (out / "images/104.jpg").read_bytes() == world.content["104"]
    refetched = [p for m, p, q in world.bucket.requests[before:] if p != "/"]
    assert refetched == ["/PMC200.1/fig-102.jpg"]


def test_transient_errors_and_bad_bodies_are_retried(world, tmp_path):
    world.fake_bucket.faults["PMC200.1/fig-102.jpg"] = [503, 500]
    world.fake_bucket.objects["PMC500.1/fig-106.png"] = b"<html>error page</html>"
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out, "--retries", "2")) == 1  # 106 is not an image anywhere
    assert (out / "images/102.jpg").read_bytes() == world.content["102"]
    assert world.bucket.paths().count("/PMC200.1/fig-102.jpg") == 3
    assert "not a decodable image" in manifest(out)["failures"]["106"]["reasons"]["bucket"]

    world.fake_bucket.faults["PMC500.1/fig-106.png"] = [503] * 5
    world.fake_bucket.objects["PMC500.1/fig-106.png"] = world.content["106"]
    assert data_download.main(world.argv(out, "--retries", "1")) == 1
    assert "gave up after 2 attempts (HTTP 503)" in manifest(out)["failures"]["106"]["reasons"]["bucket"]


def test_offline_uses_the_hub_cache_and_pins_revisions(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out, "--revision", COMMIT)) == 0
    world.hub.close()  # hub gone: the pre-seeded cache must serve the annotations
    out2 = tmp_path / "mc2"
    assert data_download.main(world.argv(out2, "--offline", "--revision", COMMIT)) == 0
    assert (out2 / "dataset.json").read_bytes() == (out / "dataset.json").read_bytes()
    assert data_download.main(world.argv(tmp_path / "mc3", "--offline", "--revision", "f" * 40)) == 1


def test_unknown_revision_is_a_usage_error(world, tmp_path):
    from robustness.errors import UserError

    with pytest.raises(UserError, match="--revision 'v9': no such revision"):
        data_download.main(world.argv(tmp_path / "mc", "--revision", "v9"))


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robustness", "data", "download", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("args", [
    [],
    ["--out", "x", "--workers", "0"],
    ["--out", "x", "--sources", "bucket,ftp"],
    ["--out", "x", "--bucket-url", "ftp://example"],
    ["--out", "x", "--roco-dir", "/no/such/folder"],
    ["--out", "x", "--retries", "many"],
])
def test_bad_arguments_one_line_exit_2(args, tmp_path):
    result = _cli(*args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    assert result.stderr.startswith("robustness data: error: ")


def test_help_lists_sources_and_flags():
    result = _cli("--help")
    assert result.returncode == 0
    for flag in ("--bucket-url", "--legacy-base", "--roco-dir", "--revision", "--hf-endpoint"):
        assert flag in result.stdout


def test_list_objects_v2_parser_and_jpeg_rules():
    xml = (f'<ListBucketResult xmlns="{S3_NS}"><IsTruncated>false</IsTruncated>'
           "<Contents><Key>PMC1.1/a.jpg</Key></Contents>"
           "<CommonPrefixes><Prefix>PMC1.1/</Prefix></CommonPrefixes></ListBucketResult>").encode()
    assert parse_list_objects_v2(xml) == (["PMC1.1/"], ["PMC1.1/a.jpg"], None)
    with pytest.raises(SourceMiss):
        parse_list_objects_v2(b"<Error><Code>AccessDenied</Code></Error>")
    data = jpeg_bytes(3)
    assert as_jpeg(data) == (data, False)
    with pytest.raises(SourceMiss, match="not a decodable image"):
        as_jpeg(data[: len(data) // 2])
    grey16 = io.BytesIO()
    Image.new("I;16", (8, 8), 40000).save(grey16, format="PNG")
    converted, changed = as_jpeg(grey16.getvalue())
    assert changed and Image.open(io.BytesIO(converted)).mode == "L"


def test_plan_jobs_dedupes_images_and_checks_local_ids(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0
    jobs = download.plan_jobs(out)
    assert [j.local_id for j in jobs] == ["101", "102", "103", "104", "105", "106"]
    assert jobs[0] == ImageJob("101", roco_ref("101"), "PMC100", "fig-101.jpg",
                               "ftp://ftp.ncbi.nlm.nih.gov/pub/pmc/oa_package/0f/1e/PMC100.tar.gz")
    image_dict = json.loads((out / "image_dict.json").read_text())
    image_dict[roco_ref("104")]["local"] = 999
    (out / "image_dict.json").write_text(json.dumps(image_dict))
    from robustness.errors import UserError

    with pytest.raises(UserError, match="field 'local' is 999"):
        download.plan_jobs(out)


def test_real_annotations_plan_all_228_images(real_annotations):
    shared = real_annotations.parent
    jobs_dir = shared  # read by path, never copied
    jobs = download.plan_jobs(jobs_dir)
    assert len(jobs) == 228
    assert all(j.pmcid and j.pmcid.startswith("PMC") and j.file_name for j in jobs)
    assert jobs[0].pmcid == "PMC3284869" and jobs[0].file_name == "1752-1947-6-45-2.jpg"


def test_an_unreachable_bucket_is_given_up_quickly(world, tmp_path):
    import socket

    with socket.socket() as sock:  # a port nothing listens on: connections are refused
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out, "--bucket-url", dead, "--workers", "1")) == 1
    reasons = [f["reasons"]["bucket"] for f in manifest(out)["failures"].values()]
    assert len(reasons) == 4  # 101, 102, 103, 106 live only in the bucket
    assert sum("gave up after 3 attempts (ConnectError" in r for r in reasons) == 3
    assert any("unreachable (skipped after repeated connection failures)" in r for r in reasons)
    assert manifest(out)["images"]["104"]["source"] == "legacy"


def test_annotations_from_a_local_folder_need_no_hub(world, tmp_path):
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out)) == 0
    world.hub.close()
    local = tmp_path / "annotations"
    local.mkdir()
    for name in ("dataset.json", "image_dict.json"):
        (local / name).write_bytes((out / name).read_bytes())
    out2 = tmp_path / "mc2"
    assert data_download.main(world.argv(out2, "--annotations-dir", str(local))) == 0
    assert manifest(out2)["annotations"]["dataset.json"]["source"] == str((local / "dataset.json").resolve())
    from robustness.errors import UserError

    with pytest.raises(UserError, match="--annotations-dir: .*dataset.json does not exist"):
        data_download.main(world.argv(tmp_path / "mc3", "--annotations-dir", str(tmp_path)))


def test_a_broken_package_falls_through_to_the_next_source(world, tmp_path):
    world.legacy_files[LEGACY_PATH] = tar_gz({"PMC300/fig-104.jpg": world.content["104"]})[:40]
    out = tmp_path / "mc"
    assert data_download.main(world.argv(out, "--sources", "bucket,legacy")) == 1
    reason = manifest(out)["failures"]["104"]["reasons"]["legacy"]
    assert "not a readable .tar.gz" in reason
    (world.roco / roco_ref("104")).write_bytes(world.content["104"])
    assert data_download.main(world.argv(out)) == 0
    assert manifest(out)["images"]["104"]["source"] == "roco"
    assert not list(out.glob("**/*.part")) and not (out / ".download-tmp").exists()
