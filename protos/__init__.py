"""The shared contract of Emporion: wire messages, the Resources type and leader election.

Everything else (``master``, ``agent``, ``framework_sdk``) depends on this package and it
depends on none of them. ``protos.v1`` holds the ``.proto`` sources and their generated
modules; ``protos.resources`` the resource arithmetic used by every component.
"""
