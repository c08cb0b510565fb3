"""Kiln's re-creations of Azure ML's curated environments, found by their Azure names."""

from __future__ import annotations

import pytest

from kiln.environment.curated import RECREATION_TAG, curated_names, get_curated, unknown_curated_message
from kiln.environment.names import check_user_name, is_curated_name
from kiln.errors import DefinitionError

AZURE_NAMES = [n for n in curated_names() if n.startswith("AzureML-")]


def test_the_names_azure_documents_are_there() -> None:
    for name in ("AzureML-Minimal", "AzureML-Tutorial", "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu",
                 "AzureML-lightgbm-3.2-ubuntu18.04-py37-cpu", "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu"):
        assert name in AZURE_NAMES
    families = ("sklearn", "lightgbm", "pytorch", "tensorflow", "inference")
    assert all(any(f in n for n in AZURE_NAMES) for f in families)


@pytest.mark.parametrize("name", AZURE_NAMES)
def test_a_recreation_says_what_it_is(name: str) -> None:
    env = get_curated(name)
    assert env is not None and env.name == name and env.version == "1"
    assert env.tags[RECREATION_TAG] == name and env.tags["curated"] == "true"
    assert env.tags["kiln.recreation-source"] and env.tags["kiln.recreation-omits"]
    assert env.description is not None and "re-creation" in env.description
    cd = env.python.conda_dependencies
    assert cd is not None and cd.get_python_version() is not None
    # Kiln replaces the Azure ML SDK: a re-creation never installs it
    assert not [p for p in cd.pip_packages if p.lower().startswith("azureml-")]


def test_azure_python_versions_and_pins_are_kept() -> None:
    sk = get_curated("AzureML-sklearn-0.24-ubuntu18.04-py37-cpu")
    assert sk is not None and sk.python.conda_dependencies is not None
    assert sk.python.conda_dependencies.get_python_version() == "3.7"
    assert "scikit-learn==0.24.1" in sk.python.conda_dependencies.pip_packages
    lgbm = get_curated("azureml-lightgbm-3.2-ubuntu18.04-py37-cpu")  # Azure's names are matched case-insensitively
    assert lgbm is not None and lgbm.python.conda_dependencies is not None
    assert "lightgbm~=3.2.0" in lgbm.python.conda_dependencies.pip_packages
    minimal = get_curated("AzureML-Minimal")
    assert minimal is not None and minimal.python.conda_dependencies is not None
    assert minimal.python.conda_dependencies.get_python_version() == "3.6"


def test_an_unknown_azure_name_lists_the_closest() -> None:
    message = unknown_curated_message("AzureML-sklearn-0.23-ubuntu18.04-py37-cpu")
    assert message.startswith("no curated environment 'AzureML-sklearn-0.23-ubuntu18.04-py37-cpu' (closest: "
                              "AzureML-sklearn-0.24-ubuntu18.04-py37-cpu, ")
    assert "Kiln-" not in unknown_curated_message("AzureML-zzzzzzzzzzzzzzzzzzzzzzzzzzz")
    assert "has no version 45" in unknown_curated_message("AzureML-Minimal", "45")


def test_the_azure_prefix_is_reserved() -> None:
    assert is_curated_name("azureml-mine") and is_curated_name("Kiln-x") and not is_curated_name("azure-ml")
    with pytest.raises(DefinitionError, match="starts with 'AzureML-', which is reserved"):
        check_user_name("AzureML-mine")
