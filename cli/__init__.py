"""The ``semid`` command line (click). Entry point: :func:`semid.cli.main.main`."""

__all__: list[str] = []
