"""A container's /dev/shm size as Azure ML writes it (``kiln.environment.shm``): ``docker run --shm-size``'s form."""

from __future__ import annotations

import pytest

from kiln.environment.shm import DEFAULT_SHM_SIZE, shm_bytes
from kiln.errors import DefinitionError


@pytest.mark.parametrize(("value", "size"), [
    ("2g", 2 << 30), ("2G", 2 << 30), ("512m", 512 << 20), ("64k", 64 << 10), ("1048576", 1 << 20),
    ("4096b", 4096), (" 1g ", 1 << 30), (3 << 20, 3 << 20)])
def test_a_size_is_read_in_bytes(value: object, size: int) -> None:
    assert shm_bytes(value, field="docker.shm_size") == size


def test_azure_mls_default_is_two_gibibytes() -> None:
    assert shm_bytes(DEFAULT_SHM_SIZE, field="x") == 2 << 30


@pytest.mark.parametrize("value", ["lots", "2 gigs", "1.5g", "2gb", "-1g", "", "1t", None, True, [1]])
def test_what_is_not_a_size_is_refused_naming_the_field_and_the_value(value: object) -> None:
    with pytest.raises(DefinitionError) as e:
        shm_bytes(value, field="run_config.docker.shm_size")
    assert str(e.value).startswith(f"run_config.docker.shm_size: {str(value)!r} is not a size like '2g', '512m'")


@pytest.mark.parametrize("value", ["0", "0g", 0])
def test_zero_is_refused(value: object) -> None:
    with pytest.raises(DefinitionError, match=r"^docker\.shm_size: .* is not a size above zero$"):
        shm_bytes(value, field="docker.shm_size")


def test_a_long_value_is_cut_in_the_message() -> None:
    with pytest.raises(DefinitionError) as e:
        shm_bytes("x" * 5000, field="docker.shm_size")
    assert len(str(e.value)) < 400
