"""``lifecyclekit --app MODULE`` and ``LIFECYCLEKIT_APP``: an application's own lifecycles on
the command line, run as a user runs it (a subprocess in the application's directory)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

SHOP = textwrap.dedent(
    '''
    """The shop's lifecycles."""
    from pydantic import BaseModel

    from lifecyclekit import Lifecycle, State, registry


    class OrderContext(BaseModel):
        order_id: str
        total: int = 0


    class Pay(BaseModel):
        amount: int


    @registry.register("shop-order")
    class Order(Lifecycle):
        """An order of the shop: placed, paid, shipped."""

        Context = OrderContext
        payloads = {"pay": Pay}
        placed = State(initial=True, value="PLACED")
        paid = State(value="PAID")
        shipped = State(final=True, value="SHIPPED")
        pay = placed.to(paid, cond="covers_total")
        ship = paid.to(shipped)

        def covers_total(self, amount: int) -> bool:
            return amount >= self.context.total
    '''
)

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def shop(tmp_path: Path) -> Run:
    """Run the command in a directory holding the application module ``shop.py``."""
    (tmp_path / "shop.py").write_text(SHOP, encoding="utf-8")

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        environ = {k: v for k, v in os.environ.items() if k != "LIFECYCLEKIT_APP"}
        environ["LIFECYCLEKIT_STORE"] = "sqlite:///shop.db"
        return subprocess.run(
            [sys.executable, "-m", "lifecyclekit", *args],
            cwd=tmp_path,
            env={**environ, **(env or {})},
            capture_output=True,
            text=True,
            check=False,
        )

    return run


@pytest.mark.slow
@pytest.mark.parametrize("how", ["option", "env"])
def test_every_verb_knows_the_application_lifecycle(shop: Run, how: str) -> None:
    """With --app (or the variable), the shop's lifecycle works with every verb."""

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        if how == "option":
            return shop("--app", "shop", *args)
        return shop(*args, env={"LIFECYCLEKIT_APP": "shop"})

    assert "shop-order" in cli("list").stdout
    assert "placed                 pay [covers_total] -> paid" in cli("show", "shop-order").stdout
    assert "placed --> paid : pay [covers_total]" in cli("diagram", "shop-order").stdout
    assert json.loads(cli("export", "shop-order").stdout)["name"] == "shop-order"
    assert cli("check", "shop-order").stdout == "shop-order: ok\n"
    assert "`shop-order`" in cli("gallery").stdout
    created = cli("new", "shop-order", "--id", "o1", "--set", "order_id=o1", "--set", "total=30")
    assert created.returncode == 0, created.stderr
    refused = cli("send", "o1", "pay", "--data", '{"amount": 10}')
    assert (refused.returncode, refused.stderr.strip()) == (
        1,
        "refused: Can't pay Order in PLACED: covers_total is False",
    )
    paid = cli("send", "o1", "pay", "--data", '{"amount": 30}', "--json")
    assert json.loads(paid.stdout)["state"] == "paid"
    assert json.loads(cli("status", "o1", "--json").stdout)["context"]["total"] == 30
    assert [r["event"] for r in json.loads(cli("history", "o1", "--json").stdout)] == ["pay"]
    assert [row["id"] for row in json.loads(cli("ls", "--json").stdout)] == ["o1"]


@pytest.mark.slow
def test_without_app_the_unknown_name_says_both_ways(shop: Run) -> None:
    """An unknown name's error names --app, the variable and the entry-point group."""
    result = shop("show", "shop-order")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    for way in ("--app MODULE", "LIFECYCLEKIT_APP=MODULE", "'lifecyclekit.machines'"):
        assert way in result.stderr


@pytest.mark.slow
@pytest.mark.parametrize(
    ("module", "source", "message"),
    [
        ("nosuch", None, "Cannot import application module 'nosuch': no module named 'nosuch'"),
        ("./gone.py", None, "Cannot import application module './gone.py': no such file"),
        ("broken", "import no_such_dependency\n", "ModuleNotFoundError: No module named"),
        ("boom", "x = 1\nraise RuntimeError('bad config')\n", "boom.py:2: RuntimeError: bad"),
    ],
)
def test_a_bad_application_module_is_one_line(
    shop: Run, tmp_path: Path, module: str, source: str | None, message: str
) -> None:
    """A module that is missing or fails to import is reported in one line, exit 1."""
    if source is not None:
        (tmp_path / f"{module}.py").write_text(source, encoding="utf-8")
    result = shop("--app", module, "list")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1
    assert message in result.stderr


@pytest.mark.slow
def test_several_modules_and_file_paths(shop: Run, tmp_path: Path) -> None:
    """LIFECYCLEKIT_APP takes several modules, comma-separated; --app takes a .py path."""
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "extra.py").write_text(
        SHOP.replace("shop-order", "shop-return").replace("class Order(", "class Return("),
        encoding="utf-8",
    )
    listed = shop("list", env={"LIFECYCLEKIT_APP": "shop, lib/extra.py"}).stdout
    assert "shop-order" in listed
    assert "shop-return" in listed
    assert "shop-return" in shop("--app", "lib/extra.py", "list").stdout
