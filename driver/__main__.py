"""``python -m driver``."""

from driver.cli import main

raise SystemExit(main())
