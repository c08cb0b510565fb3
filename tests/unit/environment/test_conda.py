from __future__ import annotations

from pathlib import Path

import pytest

from kiln.environment.conda import DEFAULT_PYTHON_VERSION, CondaDependencies
from kiln.errors import DefinitionError, FormatError, SpecError


def test_default_template_pins_kilns_python_and_conda_forge() -> None:
    cd = CondaDependencies()
    assert cd.conda_packages == [f"python={DEFAULT_PYTHON_VERSION}"]
    assert cd.conda_channels == ["conda-forge"]
    assert cd.pip_packages == []
    assert cd.get_python_version() == DEFAULT_PYTHON_VERSION


def test_create_with_packages_python_and_index() -> None:
    cd = CondaDependencies.create(pip_packages=["scikit-learn==1.9.1", "requests"], conda_packages=["numpy=1.26"],
                                  python_version="3.10", pip_indexurl="https://my.index/simple")
    assert cd.conda_packages == ["python=3.10", "numpy=1.26"]
    assert cd.pip_packages == ["scikit-learn==1.9.1", "requests"]
    assert cd.pip_options == ["--index-url https://my.index/simple"]
    assert cd.python_version == "3.10"


def test_seed_example_add_conda_and_pip_package() -> None:
    cd = CondaDependencies()
    cd.add_conda_package("numpy==1.17.0")
    cd.add_pip_package("pillow")
    text = cd.serialize_to_string()
    assert "- numpy==1.17.0\n" in text
    assert "  - pillow\n" in text


def test_add_replaces_same_package_in_place() -> None:
    cd = CondaDependencies.create(pip_packages=["Pillow", "requests"], conda_packages=["numpy"])
    cd.add_pip_package("pillow>=10")
    cd.add_conda_package("numpy>=1.26")
    assert cd.pip_packages == ["pillow>=10", "requests"]
    assert cd.conda_packages[-1] == "numpy>=1.26"
    assert len([p for p in cd.conda_packages if p.startswith("numpy")]) == 1


def test_remove_by_name() -> None:
    cd = CondaDependencies.create(pip_packages=["pandas==2.0", "requests"], conda_packages=["numpy=1.26"])
    cd.remove_pip_package("pandas")
    cd.remove_conda_package("numpy")
    assert cd.pip_packages == ["requests"]
    assert "numpy=1.26" not in cd.conda_packages
    cd.remove_pip_package("requests")
    assert "pip:" not in cd.serialize_to_string()


def test_channels_keep_order_and_no_duplicates() -> None:
    cd = CondaDependencies()
    cd.add_channel("pytorch")
    cd.add_channel("conda-forge")
    assert cd.conda_channels == ["conda-forge", "pytorch"]
    cd.remove_channel("conda-forge")
    assert cd.conda_channels == ["pytorch"]


def test_set_pip_option_replaces_same_flag_but_repeats_extra_index() -> None:
    cd = CondaDependencies()
    cd.set_pip_option("--index-url https://a/simple")
    cd.set_pip_option("--index-url https://b/simple")
    cd.set_pip_option("--extra-index-url https://c/simple")
    cd.set_pip_option("--extra-index-url https://d/simple")
    cd.add_pip_package("six")
    assert cd.pip_options == ["--index-url https://b/simple", "--extra-index-url https://c/simple",
                              "--extra-index-url https://d/simple"]
    with pytest.raises(DefinitionError, match="not a pip option"):
        cd.set_pip_option("six")


@pytest.mark.parametrize("spec", ["numpy=>1.2", "numpy[[", ""])
def test_bad_conda_spec_names_it(spec: str) -> None:
    with pytest.raises(SpecError) as e:
        CondaDependencies().add_conda_package(spec)
    assert repr(spec) in str(e.value)


@pytest.mark.parametrize("spec", ["numpy=>1.2", "foo==", "bar>>1"])
def test_bad_pip_spec_names_it(spec: str) -> None:
    with pytest.raises(SpecError) as e:
        CondaDependencies().add_pip_package(spec)
    assert repr(spec) in str(e.value)


def test_round_trip_file_keeps_bytes_and_comments(tmp_path: Path) -> None:
    text = ("# my env\r\nname: x\ndependencies:\n  # the interpreter\n- python=3.11\n- pip:\n  - six==1.16.0\n"
            "channels:\n- conda-forge\n")
    path = tmp_path / "env.yml"
    path.write_bytes(text.encode())
    cd = CondaDependencies(conda_dependencies_file_path=path)
    assert cd.pip_packages == ["six==1.16.0"]
    out = cd.save(tmp_path / "out.yml")
    assert Path(out).read_bytes() == text.encode()


def test_unknown_top_level_key_is_an_error_naming_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "env.yml"
    path.write_text("name: x\nbuild: foo\ndependencies:\n- python=3.10\n")
    with pytest.raises(FormatError) as e:
        CondaDependencies(conda_dependencies_file_path=path)
    assert str(path) in str(e.value) and "'build'" in str(e.value)


def test_as_dict_is_plain_data() -> None:
    cd = CondaDependencies.create(pip_packages=["six"], python_version="3.11")
    data = cd.as_dict()
    assert data == {"name": "project_environment", "dependencies": ["python=3.11", {"pip": ["six"]}],
                    "channels": ["conda-forge"]}
    assert CondaDependencies.from_dict(data) == cd


def test_copy_is_independent() -> None:
    cd = CondaDependencies.create(pip_packages=["six"])
    twin = cd.copy()
    twin.add_pip_package("attrs")
    assert cd.pip_packages == ["six"]


def test_remove_pip_option_exact_or_by_flag() -> None:
    cd = CondaDependencies()
    for option in ("--index-url https://a/simple", "--extra-index-url https://c/simple",
                   "--extra-index-url https://d/simple"):
        cd.set_pip_option(option)
    cd.remove_pip_option("--extra-index-url https://c/simple")
    assert cd.pip_options == ["--index-url https://a/simple", "--extra-index-url https://d/simple"]
    cd.remove_pip_option("--extra-index-url")
    assert cd.pip_options == ["--index-url https://a/simple"]
