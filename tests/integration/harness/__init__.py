"""Helpers for the mod_auth_memsession integration tests (processes, httpd, memcached, HTTP)."""
