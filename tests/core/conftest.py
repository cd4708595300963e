from tests.support.fixtures import broker_kind, make_hub, redis_server  # noqa: F401
