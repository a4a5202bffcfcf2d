"""``python -m infermux.sandbox`` (``infermux sandbox`` imports :func:`main` from here)."""

from infermux.sandbox._cli import main

__all__ = ["main"]

if __name__ == "__main__":
    raise SystemExit(main())
