"""Package discovery that pyproject.toml cannot express (the rest of the metadata lives there).

Every package under ``src/`` is found automatically, and ``machines/`` with every subpackage,
present and future, installs as ``lifecyclekit.machines``.
"""

from setuptools import find_packages, setup

machines = [
    "lifecyclekit.machines",
    *(f"lifecyclekit.machines.{p}" for p in find_packages("machines")),
]

setup(
    package_dir={"": "src", "lifecyclekit.machines": "machines"},
    packages=[*find_packages("src"), *machines],
)
