"""Known sources of VGG19 weights, the download cache, and downloads that are never half-written.

Facts (URLs, sizes, checksums) from keras-applications' vgg19.py and torchvision's vgg.py; the
Keras hashes are MD5 (32 hex digits, as Keras' get_file treats them), torchvision's file name
carries the first 8 hex digits of its SHA-256, whose full value is checked here.
"""
import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

from ..errors import WeightsError
from ..files import atomic_write, one_line, scratch_file
from .cache import cache_dir, framework_copies, writable_dir as _writable_dir
from .converters import convert
from .fileformat import layer_spec, load_network
SOURCES = {
    ("keras", False): dict(
        url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
            "vgg19_weights_tf_dim_ordering_tf_kernels.h5",
        size=574710816, md5="cbe5617147190e668d6c5d5026f83318"),
    ("keras", True): dict(
        url="https://storage.googleapis.com/tensorflow/keras-applications/vgg19/"
            "vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5",
        size=80134624, md5="253f8cb515780f3b799900260a226db6"),
    ("torchvision", False): dict(
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        size=574673361, sha256="dcbb9e9dad569fff7a846263a77324fc34978fea2bfb039c012d710e1776ae44"),
}
DEFAULT_SOURCE = "keras"   # Oxford's original VGG19 (converted from Caffe by Keras)


def cached_name(source, notop):
    return f"vgg19-{source}{'-notop' if notop else ''}.h5"


MAX_DOWNLOAD = 2 * 10 ** 9   # bytes: VGG19's largest file is 575 MB
STALL_TIMEOUT = 60           # seconds without a byte before a download gives up
DEADLINE = 4 * 3600          # seconds for a whole download (575 MB at 40 kB/s)


def _check_url(url):
    parts = urllib.parse.urlsplit(url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or any(c.isspace() for c in url):
        raise WeightsError(f"{str(url)[:100]!r} is not an http(s) URL")
    return url


def _hexdigest(value, digits, name):
    value = (value or "").strip().lower()
    if len(value) != digits or any(c not in "0123456789abcdef" for c in value):
        raise WeightsError(f"--{name} must be {digits} hexadecimal digits")
    return value


def download(url, dest, size=None, md5=None, sha256=None, quiet=False, timeout=STALL_TIMEOUT,
             deadline=DEADLINE, convert_to=None):
    """Fetch ``url`` into ``dest`` via a temp file: checked (size, every checksum given), then
    renamed.

    A failure at any point (network, short read, a stall longer than ``timeout`` seconds, a
    whole download longer than ``deadline``, a checksum mismatch, an interruption) deletes the
    temp file, so a partial download never looks like a finished one.
    """
    from tqdm import tqdm
    _check_url(url)
    expected = {}
    if md5:
        expected["md5"] = _hexdigest(md5, 32, "md5")
    if sha256:
        expected["sha256"] = _hexdigest(sha256, 64, "sha256")
    hashers = {name: hashlib.new(name) for name in expected}
    folder = os.path.dirname(os.path.abspath(dest))
    _writable_dir(folder)
    target = f" -o {convert_to}" if convert_to else ""
    hint = f"download it by hand and run: python -m minicnn.weights convert FILE{target}"
    start = time.monotonic()
    with atomic_write(dest) as tmp:
        with open(tmp, "wb") as out:
            try:
                response = urllib.request.urlopen(url, timeout=timeout)
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                reason = one_line(getattr(e, "reason", e) or e.__class__.__name__)[:200]
                raise WeightsError(f"cannot download {url} ({reason}); {hint}") from None
            with response:
                try:
                    announced = int(response.headers.get("Content-Length") or 0) or None
                except ValueError:
                    announced = None                  # a garbled header: rely on size and hash
                total = size or announced
                if total is not None and total > MAX_DOWNLOAD:
                    raise WeightsError(f"{url} announces {total:,d} bytes, more than any weight file")
                got = 0
                with tqdm(total=total, unit="B", unit_scale=True, desc=os.path.basename(dest),
                          disable=quiet or not sys.stderr.isatty(), file=sys.stderr) as bar:
                    while True:
                        try:
                            chunk = response.read1(1 << 20)   # what has arrived: the deadline stays checked
                        except (OSError, ValueError, http.client.HTTPException) as e:
                            raise WeightsError(f"download of {url} broke off after {got} bytes "
                                               f"({e.__class__.__name__}); try again") from None
                        if not chunk:
                            break
                        got += len(chunk)
                        if got > (total or MAX_DOWNLOAD):
                            raise WeightsError(f"{url} sends more than the {total or MAX_DOWNLOAD:,d} bytes "
                                               "expected; stopped")
                        if time.monotonic() - start > deadline:
                            raise WeightsError(f"download of {url} is too slow: stopped after {deadline} s "
                                               f"and {got} bytes; {hint}")
                        out.write(chunk)
                        for hasher in hashers.values():
                            hasher.update(chunk)
                        bar.update(len(chunk))
        if total is not None and got != total:
            raise WeightsError(f"download of {url} is incomplete: {got} of {total} bytes; try again")
        for name, want in expected.items():
            if hashers[name].hexdigest() != want:
                raise WeightsError(f"checksum mismatch for {url}: {name} {hashers[name].hexdigest()}, expected "
                                   f"{want}; the partial file was deleted")
    return dest


def fetch_vgg19(source=DEFAULT_SOURCE, notop=False, url=None, sha256=None, md5=None, quiet=False, log=None):
    """Download (if not cached), verify and convert VGG19; returns the converted file's path.
    ``log`` (a function of one string), if given, is told what is happening.

    The raw download goes to a temporary file of its own in the cache folder (never a name
    taken from the URL, which could be the cache entry itself or '..'), is converted, and is
    deleted whatever happens; two runs at once each use their own temporary file, and the
    converted file is renamed into place whole."""
    if (source, notop) not in SOURCES:
        raise WeightsError(f"no {'notop ' if notop else ''}VGG19 file from {source}; "
                           f"known: keras, keras --notop, torchvision")
    folder = cache_dir()
    final = os.path.join(folder, cached_name(source, notop))
    if os.path.exists(final):
        return final
    known = SOURCES[(source, notop)]
    md5 = md5 and _hexdigest(md5, 32, "md5")            # checked before anything is fetched
    sha256 = sha256 and _hexdigest(sha256, 64, "sha256")
    if url is None:
        url, size, md5, sha256 = known["url"], known["size"], known.get("md5"), known.get("sha256")
        copy = _framework_copy(source, url, size, {"md5": md5, "sha256": sha256}, log)
        if copy:
            _writable_dir(folder)
            if log:
                log(f"converting {copy} (already downloaded by {'PyTorch' if source == 'torchvision' else 'Keras'}) ...")
            convert(copy, final, source_note=f"{url} (a verified copy from {copy}, converted by minicnn)")
            return final
    else:
        size = None  # a mirror or another copy: checked by the hash given with it
        if not (md5 or sha256):
            raise WeightsError("a download from another URL needs --sha256 (or --md5) so it can be verified")
    _check_url(url)
    if log:
        mb = f"{size / 1e6:.0f} MB" if size else "size unknown"
        log(f"downloading VGG19 weights ({source}{', notop' if notop else ''}, {mb}) "
            f"from {url} into {folder}")
    _writable_dir(folder)
    with scratch_file(folder, ".vgg19-download.") as raw:   # deleted after the conversion: one copy on disk
        download(url, raw, size=size, md5=md5, sha256=sha256, quiet=quiet, convert_to=final)
        if log:
            log("converting to minicnn's format ...")
        try:
            convert(raw, final, source_note=f"{url} (converted by minicnn)")
        except WeightsError as e:           # name what the user asked for, not the deleted temporary
            raise WeightsError(str(e).replace(raw, f"the file downloaded from {url}")) from None
    return final


def _framework_copy(source, url, size, digests, log):
    """A copy of this very file that PyTorch or Keras downloaded before, if one is there and its
    size and checksums (``digests``: {"md5": ..., "sha256": ...}, None where unknown) are right;
    a copy that differs is left alone and said so."""
    expected = {name: want for name, want in digests.items() if want}
    for path in framework_copies(source, url):
        if not os.path.isfile(path):
            continue
        hashers = {name: hashlib.new(name) for name in expected}
        got = 0
        with open(path, "rb") as f:
            while got <= size and (chunk := f.read(1 << 22)):   # never reads past the known size
                got += len(chunk)
                for hasher in hashers.values():
                    hasher.update(chunk)
        if got == size and all(h.hexdigest() == expected[name] for name, h in hashers.items()):
            return path
        if log:
            log(f"note: not using {path}: its size or checksum is not that of {source}'s VGG19 file")
    return None


def load_vgg19(source=None, notop=False, download_ok=True, quiet=False, log=None):
    """VGG19 with ImageNet weights: a cached converted file, else downloaded on first use."""
    sources = [source] if source else ["keras", "torchvision"]
    for s in sources:
        path = os.path.join(cache_dir(), cached_name(s, notop))
        if os.path.exists(path):
            return load_network(path, expected_layers=_vgg19_spec(notop))
    if not download_ok:
        raise WeightsError(f"VGG19 weights are not in {cache_dir()}: run "
                           "python -m minicnn.weights download vgg19")
    path = fetch_vgg19(source or DEFAULT_SOURCE, notop=notop, quiet=quiet, log=log)
    return load_network(path, expected_layers=_vgg19_spec(notop))


def _vgg19_spec(notop):
    from ..vgg19 import vgg19
    return layer_spec(vgg19(init=False, notop=notop))
