from serving import server, zoo  # noqa: F401 - the fixtures of this folder's tests
