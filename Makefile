# mod_auth_memsession — see README.md.
#   make            build build/mod_auth_memsession.so (release)
#   make test       install what the tests need, build, run every test
#   make demo       throwaway memcached + httpd on loopback, walk through login -> logout
#   make bench      the module against static, Basic, socache... side by side, as ratios
#   make install    install the module and a2enmod files (honours DESTDIR, PREFIX)
APXS       ?= apxs
PROFILE    ?= release
MODULE     := build/mod_auth_memsession.so
PREFIX     ?= /usr
DESTDIR    ?=
LIBEXECDIR ?= $(shell $(APXS) -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
APACHE_CONFDIR ?= /etc/apache2

.PHONY: all module memsessionctl deps test unit-test integration-test demo bench install clean lint FORCE

all: module

module: $(MODULE)

$(MODULE): FORCE
	build-aux/link-module.sh $(PROFILE) $@

deps:
	build-aux/install-deps.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

unit-test:
	cargo test

integration-test: $(MODULE)
	MEMSESSION_MODULE=$(CURDIR)/$(MODULE) python3 -m pytest -q tests/integration

test: deps
	$(MAKE) unit-test
	$(MAKE) integration-test

# Contenders side by side (see bench/bench.py); BENCH_ARGS="--rounds 1 --seconds 3" for a quick look.
bench: deps $(MODULE)
	command -v wrk >/dev/null || apt-get install -y -q wrk
	python3 bench/bench.py $(BENCH_ARGS)

demo: deps $(MODULE)
	demo/demo.sh

# What a Debian package lays out; every path honours DESTDIR (staged installs need no root).
SBINDIR        ?= $(PREFIX)/sbin
DOCDIR         ?= $(PREFIX)/share/doc/mod-auth-memsession
SYSTEMDUNITDIR ?= /lib/systemd/system
TMPFILESDIR    ?= /usr/lib/tmpfiles.d
CTL            := target/$(PROFILE)/memsessionctl

memsessionctl: FORCE
	cargo build $(if $(filter release,$(PROFILE)),--release) --bin memsessionctl

install: $(MODULE) memsessionctl
	install -d $(DESTDIR)$(LIBEXECDIR) $(DESTDIR)$(APACHE_CONFDIR)/mods-available \
		$(DESTDIR)$(SBINDIR) $(DESTDIR)$(DOCDIR) $(DESTDIR)$(SYSTEMDUNITDIR) $(DESTDIR)$(TMPFILESDIR)
	install -m 0644 $(MODULE) $(DESTDIR)$(LIBEXECDIR)/mod_auth_memsession.so
	install -m 0644 apache-conf/auth_memsession.load apache-conf/auth_memsession.conf \
		$(DESTDIR)$(APACHE_CONFDIR)/mods-available/
	install -m 0755 $(CTL) $(DESTDIR)$(SBINDIR)/memsessionctl
	install -m 0644 apache-conf/memsession-memcached.service $(DESTDIR)$(SYSTEMDUNITDIR)/
	install -m 0644 apache-conf/memsession-tmpfiles.conf $(DESTDIR)$(TMPFILESDIR)/memsession.conf
	install -m 0644 README.md docs/directives.md apache-conf/example-site.conf $(DESTDIR)$(DOCDIR)/

clean:
	cargo clean
	rm -rf build
