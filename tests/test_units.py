"""One size convention (binary units) for the app and the command line."""

from storegui.app.formatting import format_progress
from storegui.app.formatting import format_size as app_size
from storegui.cli.progress import format_bytes as cli_size
from storegui.units import format_size


def test_sizes_read_the_same_in_the_app_and_on_the_command_line():
    for n in (0, 1, 512, 1023, 1024, 1536, 1024 * 1023.99, 3 << 20, 2 << 30, 5 << 50):
        assert app_size(int(n)) == cli_size(int(n)) == format_size(int(n))
    assert format_size(1) == "1 byte" and format_size(1023) == "1023 bytes"
    assert format_size(1536) == "1.5 KiB" and format_size(2 << 30) == "2.0 GiB"
    assert format_size(1024 * 1024 - 1) == "1.0 MiB"  # never "1024.0 KiB"
    assert app_size(None) == "" and format_progress(1 << 20, 3 << 20) == "1.0 MiB of 3.0 MiB"
