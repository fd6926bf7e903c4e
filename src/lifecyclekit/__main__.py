"""``python -m lifecyclekit``: the same as the ``lifecyclekit`` command."""

from lifecyclekit.cli import main

main()
