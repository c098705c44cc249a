"""Registries: an HTTP transport and Distribution client, push/pull/copy of whole image graphs, login.

The operations are in :mod:`.api` (push_image, pull_image, copy_image, connect, RemoteOptions);
importing this package imports nothing else, so a command pays only for what it uses.
"""
