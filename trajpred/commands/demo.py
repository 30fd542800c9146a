"""(being built)"""


def add_arguments(p) -> None:
    pass


def run(args) -> int:
    from ..errors import TrajpredError
    raise TrajpredError("not built yet")
