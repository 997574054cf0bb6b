"""An S3 URL without a bucket is refused when the URL is read, in one clear line."""

import pytest

from storegui.cli.main import main
from storegui.stores.errors import StoreError
from storegui.stores.fsspec.store import FsspecStore


@pytest.mark.parametrize("url", ["s3://", "s3:///", "s3:///prefix/", "S3://", "s3a://"])
def test_an_s3_url_without_a_bucket_is_refused(url):
    with pytest.raises(StoreError, match=r"an S3 URL needs a bucket: s3a?://BUCKET\[/PREFIX\]"):
        FsspecStore(url)


def test_an_s3_url_with_a_bucket_is_accepted():
    assert FsspecStore("s3://bucket/prefix", endpoint_url="http://127.0.0.1:1").url == \
        "s3://bucket/prefix"


def test_the_command_line_says_so_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert main(["ls", "--backing", "s3://", "--mount", "memory://"]) == 1
    err = capsys.readouterr().err
    assert err == ("storegui: error: an S3 URL needs a bucket: s3://BUCKET[/PREFIX] "
                   "(not 's3://')\n")
