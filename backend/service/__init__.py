"""The server process: the ZeroMQ socket, the job worker, the head registry, keys and log lines."""
