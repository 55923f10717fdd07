"""Where a MediConfusion image comes from: the PMC Cloud Service bucket, a legacy package mirror, ROCO.

Each source turns one :class:`ImageJob` (a local id, the article's PMCID, the figure's file name
and the ROCO path) into the image's bytes, or raises :class:`SourceMiss` with a short reason so
the downloader can try the next source and report why every source failed. HTTP goes through
:class:`HttpFetcher`, which retries transient failures (connection errors, timeouts, 408/425/429/
5xx, a body whose MD5 disagrees with the S3 ``ETag``) with exponential backoff and jitter.

The layout of the bucket is documented in ``robustness/data/download.py``.
"""

from __future__ import annotations

import hashlib
import io
import os
import random
import re
import tarfile
import threading
import time
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Protocol
from urllib.parse import quote

import httpx

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
_MD5_ETAG = re.compile(r'^"?([0-9a-fA-F]{32})"?$')
_PMCID = re.compile(r"PMC\d+")
USER_AGENT = "mediconfusion-robustness/0.1 (+robustness data download)"


class SourceMiss(Exception):
    """This source cannot provide the image (absent, unreachable after retries, undecodable)."""


class _Transient(Exception):
    """A failure worth retrying."""


@dataclass(frozen=True)
class ImageJob:
    """One benchmark image to fetch: its local id and where it may be found."""

    local_id: str
    roco_ref: str  # ROCO-relative path (dataset.json ``im_1`` / ``im_2``)
    pmcid: str | None = None  # "PMC3284869", parsed from image_dict's ``dlink``
    file_name: str | None = None  # the figure's file name inside the article
    dlink: str | None = None  # the legacy package address (ftp://.../oa_package/xx/yy/PMC….tar.gz)

    @property
    def label(self) -> str:
        where = f"{self.pmcid}/{self.file_name}" if self.pmcid else self.roco_ref
        return f"{self.local_id} ({where})"


@dataclass(frozen=True)
class Fetched:
    """Raw bytes of one image and where they came from."""

    data: bytes
    source: str
    location: str


class ImageSource(Protocol):
    name: str

    def fetch(self, job: ImageJob) -> Fetched: ...


def pmcid_from_dlink(dlink: str) -> str | None:
    """The PMCID named by a legacy package address (``…/PMC3284869.tar.gz`` → ``PMC3284869``)."""
    found = _PMCID.findall(dlink or "")
    return found[-1] if found else None


def safe_file_name(name: str | None) -> str | None:
    """A bare figure file name (no folders, no '..'), else None."""
    if not name or "/" in name or "\\" in name or name in (".", ".."):
        return None
    return name


class HttpFetcher:
    """A shared HTTP client with retries and backoff; thread-safe (one ``httpx.Client``)."""

    def __init__(self, *, timeout: float = 30.0, retries: int = 4, backoff: float = 1.0,
                 max_backoff: float = 60.0) -> None:
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._client = httpx.Client(timeout=timeout, follow_redirects=True,
                                    headers={"User-Agent": USER_AGENT})
        self._unreachable: dict[str, int] = {}  # host -> requests in a row that never connected
        self._lock = threading.Lock()

    UNREACHABLE_AFTER = 3  # give up on a host after this many requests failed to connect at all

    @staticmethod
    def _host(url: str) -> str:
        parsed = httpx.URL(url)
        return f"{parsed.host}:{parsed.port or (443 if parsed.scheme == 'https' else 80)}"

    def _check_host(self, url: str) -> None:
        host = self._host(url)
        with self._lock:
            if self._unreachable.get(host, 0) >= self.UNREACHABLE_AFTER:
                raise SourceMiss(f"{host} unreachable (skipped after repeated connection failures)")

    def _note(self, url: str, connected: bool) -> None:
        host = self._host(url)
        with self._lock:
            self._unreachable[host] = 0 if connected else self._unreachable.get(host, 0) + 1

    def close(self) -> None:
        self._client.close()

    def _sleep(self, attempt: int, retry_after: str | None) -> None:
        delay = self.backoff * (2 ** attempt) + random.uniform(0, self.backoff)
        if retry_after and retry_after.strip().isdigit():
            delay = max(delay, float(retry_after))
        time.sleep(min(delay, self.max_backoff))

    def _request(self, url: str, params: dict[str, str] | None,
                 consume: Callable[[httpx.Response], object]) -> object:
        """GET with retries: 403/404/410 → SourceMiss at once; connection errors, timeouts and
        408/425/429/5xx (or ``consume`` raising _Transient) are retried with backoff."""
        self._check_host(url)
        last, connected = "no attempt", False
        for attempt in range(self.retries + 1):
            retry_after = None
            try:
                with self._client.stream("GET", url, params=params) as response:
                    connected = True
                    status = response.status_code
                    if status in TRANSIENT_STATUS:
                        retry_after = response.headers.get("Retry-After")
                        raise _Transient(f"HTTP {status}")
                    if status >= 400:
                        raise SourceMiss(f"HTTP {status} for {_short(url)}")
                    result = consume(response)
                self._note(url, True)
                return result
            except (_Transient, httpx.TransportError) as err:
                last = f"{type(err).__name__}: {err}" if isinstance(err, httpx.TransportError) else str(err)
                if attempt < self.retries:
                    self._sleep(attempt, retry_after)
        self._note(url, connected)
        raise SourceMiss(f"{_short(url)}: gave up after {self.retries + 1} attempts ({last})")

    def get(self, url: str, *, params: dict[str, str] | None = None,
            check_etag_md5: bool = False) -> bytes:
        """The body of ``url``; with ``check_etag_md5`` a body that disagrees with an MD5-style
        ``ETag`` (S3 single-part objects) counts as a transient failure."""

        def consume(response: httpx.Response) -> bytes:
            body = response.read()
            match = _MD5_ETAG.match(response.headers.get("ETag", "")) if check_etag_md5 else None
            if match and hashlib.md5(body).hexdigest() != match.group(1).lower():
                raise _Transient("body does not match its ETag MD5")
            return body

        return self._request(url, params, consume)  # type: ignore[return-value]

    def download_to(self, url: str, dest: Path) -> None:
        """Stream ``url`` into ``dest`` through a temporary file and a rename."""
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")

        def consume(response: httpx.Response) -> None:
            with open(tmp, "wb") as fh:
                for chunk in response.iter_bytes(1 << 20):
                    fh.write(chunk)
            os.replace(tmp, dest)

        try:
            self._request(url, None, consume)
        finally:
            tmp.unlink(missing_ok=True)


def _short(url: str) -> str:
    return url if len(url) <= 120 else url[:117] + "..."


class _Memo:
    """Compute a value once per key even when several threads ask at the same time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._locks: dict[str, threading.Lock] = {}
        self._values: dict[str, object] = {}

    def get(self, key: str, compute: Callable[[], object]) -> object:
        with self._lock:
            key_lock = self._locks.setdefault(key, threading.Lock())
        with key_lock:
            if key not in self._values:
                try:
                    self._values[key] = compute()
                except SourceMiss as err:
                    self._values[key] = err
            value = self._values[key]
        if isinstance(value, SourceMiss):
            raise value
        return value


def _local_name(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def parse_list_objects_v2(xml_bytes: bytes) -> tuple[list[str], list[str], str | None]:
    """(common prefixes, keys, next continuation token or None) from an S3 ListObjectsV2 reply."""
    try:
        root = ET.fromstring(xml_bytes)
    except ET.ParseError as err:
        raise SourceMiss(f"bucket listing is not valid XML ({err})") from None
    if _local_name(root.tag) != "ListBucketResult":
        raise SourceMiss(f"bucket listing has unexpected root <{_local_name(root.tag)}>")
    prefixes, keys, token, truncated = [], [], None, False
    for child in root:
        name = _local_name(child.tag)
        if name == "CommonPrefixes":
            prefixes += [(el.text or "") for el in child if _local_name(el.tag) == "Prefix"]
        elif name == "Contents":
            keys += [(el.text or "") for el in child if _local_name(el.tag) == "Key"]
        elif name == "IsTruncated":
            truncated = (child.text or "").strip().lower() == "true"
        elif name == "NextContinuationToken":
            token = child.text
    return prefixes, keys, (token if truncated else None)


class PmcBucketSource:
    """The PMC Cloud Service: ``<bucket>/PMC<id>.<version>/<figure file>``, newest version first."""

    name = "bucket"

    def __init__(self, http: HttpFetcher, base_url: str) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self._versions = _Memo()

    def versions(self, pmcid: str) -> list[int]:
        """Article versions listed under the prefix ``PMC<id>.`` (delimiter '/'), newest first."""
        return self._versions.get(pmcid, lambda: self._list_versions(pmcid))  # type: ignore[return-value]

    def _list_versions(self, pmcid: str) -> list[int]:
        pattern = re.compile(rf"^{re.escape(pmcid)}\.(\d+)/$")
        found: set[int] = set()
        token: str | None = None
        for _ in range(100):  # pages; an article has a handful of versions
            params = {"list-type": "2", "prefix": f"{pmcid}.", "delimiter": "/"}
            if token:
                params["continuation-token"] = token
            prefixes, _keys, token = parse_list_objects_v2(self.http.get(self.base_url + "/", params=params))
            found.update(int(m.group(1)) for p in prefixes if (m := pattern.match(p)))
            if not token:
                break
        return sorted(found, reverse=True)

    def fetch(self, job: ImageJob) -> Fetched:
        file_name = safe_file_name(job.file_name)
        if not job.pmcid or not file_name:
            raise SourceMiss("no PMCID / figure file name in image_dict.json")
        versions = self.versions(job.pmcid)
        if not versions:
            raise SourceMiss(f"no versions listed under prefix {job.pmcid}.")
        misses = []
        for version in versions:
            url = f"{self.base_url}/{job.pmcid}.{version}/{quote(file_name)}"
            try:
                return Fetched(self.http.get(url, check_etag_md5=True), self.name, url)
            except SourceMiss as err:
                misses.append(f"v{version}: {err}")
        raise SourceMiss(f"{file_name} not found in {job.pmcid} ({'; '.join(misses)})")


class LegacyPackageSource:
    """A mirror of PMC's legacy article packages: ``<base>/<xx>/<yy>/PMC<id>.tar.gz``, figure inside."""

    name = "legacy"

    def __init__(self, http: HttpFetcher, base_url: str, workdir: Path) -> None:
        self.http = http
        self.base_url = base_url.rstrip("/")
        self.workdir = workdir
        self._packages = _Memo()

    def package_url(self, job: ImageJob) -> str | None:
        """The mirror URL for the package in ``dlink`` (its last three path parts under the base)."""
        if not job.dlink:
            return None
        parts = PurePosixPath(job.dlink.split("://", 1)[-1]).parts
        if len(parts) < 3 or not parts[-1].endswith(".tar.gz"):
            return None
        return "/".join([self.base_url, *(quote(p) for p in parts[-3:])])

    def _package(self, url: str, pmcid: str) -> Path:
        def download() -> Path:
            self.workdir.mkdir(parents=True, exist_ok=True)
            dest = self.workdir / f"{pmcid}.tar.gz"
            self.http.download_to(url, dest)
            return dest

        return self._packages.get(url, download)  # type: ignore[return-value]

    def fetch(self, job: ImageJob) -> Fetched:
        url = self.package_url(job)
        file_name = safe_file_name(job.file_name)
        if url is None or not file_name:
            raise SourceMiss("no legacy package address (dlink) / figure file name")
        package = self._package(url, job.pmcid or PurePosixPath(url).name.split(".")[0])
        try:
            with tarfile.open(package, "r:gz") as tar:
                for member in tar:
                    if member.isfile() and PurePosixPath(member.name).name == file_name:
                        handle = tar.extractfile(member)
                        if handle is not None:
                            return Fetched(handle.read(), self.name, f"{url}#{member.name}")
        except (tarfile.TarError, OSError, EOFError) as err:
            raise SourceMiss(f"{_short(url)}: not a readable .tar.gz ({err})") from None
        raise SourceMiss(f"{file_name} not inside {_short(url)}")


class RocoSource:
    """A local ROCO checkout: the image at ``<dir>/<im_1 path>`` (or ``<dir>/data/<im_1 path>``)."""

    name = "roco"

    def __init__(self, root: Path) -> None:
        self.root = root

    def fetch(self, job: ImageJob) -> Fetched:
        rel = PurePosixPath(job.roco_ref)
        if not job.roco_ref or rel.is_absolute() or ".." in rel.parts:
            raise SourceMiss(f"unsafe ROCO path {job.roco_ref!r}")
        for base in (self.root, self.root / "data"):
            path = base.joinpath(*rel.parts)
            if path.is_file():
                return Fetched(path.read_bytes(), self.name, str(path))
        raise SourceMiss(f"{rel} not under {self.root}")


def as_jpeg(data: bytes) -> tuple[bytes, bool]:
    """The image as JPEG bytes: JPEG input is kept byte for byte; anything else is converted.

    The image is fully decoded first, so truncated or non-image bodies (an HTML error page
    served with status 200) are rejected. Returns (bytes, converted).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            if img.format == "JPEG":
                return data, False
            if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
                rgba = img.convert("RGBA")
                flat = Image.new("RGB", rgba.size, (255, 255, 255))
                flat.paste(rgba, mask=rgba.getchannel("A"))
                img = flat
            elif img.mode.startswith("I") or img.mode == "F":  # 16/32-bit grey: scale to 8 bits
                import numpy as np

                arr = np.asarray(img, dtype=np.float64)
                peak = float(arr.max()) if arr.size else 0.0
                img = Image.fromarray((arr / (peak or 1.0) * 255).clip(0, 255).astype(np.uint8), "L")
            elif img.mode not in ("RGB", "L"):
                img = img.convert("RGB")
            out = io.BytesIO()
            img.save(out, format="JPEG", quality=95)
            return out.getvalue(), True
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise SourceMiss(f"not a decodable image ({err})") from None
