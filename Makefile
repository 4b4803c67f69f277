# mod_auth_memsession — see README.md.
#   make            build build/mod_auth_memsession.so (release)
#   make test       install what the tests need, build, run every test
#   make demo       throwaway memcached + httpd on loopback, walk through login -> logout
#   make bench      the module against static, Basic, socache... side by side, as ratios
#   make install    install the module and a2enmod files (honours DESTDIR, PREFIX)
#   make deb        build/libapache2-mod-auth-memsession_<version>_<arch>.deb (debian/)
#   make package-test  build the .deb, install, enable, configtest, remove, purge (as root)
#   make fuzz       each cargo-fuzz target for FUZZ_SECONDS (not part of make test)
#   make soak       a long run on one session, children's memory at start and end
#   make sanitize   the unit tests under AddressSanitizer (leaks and invalid accesses)
#   make valgrind   httpd -X with the module under valgrind memcheck (also run by make test)
#   make mutants    cargo-mutants over the pure modules against the unit tests (not in make test)
APXS       ?= apxs
PROFILE    ?= release
MODULE     := build/mod_auth_memsession.so
PREFIX     ?= /usr
DESTDIR    ?=
LIBEXECDIR ?= $(shell $(APXS) -q LIBEXECDIR 2>/dev/null || echo /usr/lib/apache2/modules)
APACHE_CONFDIR ?= /etc/apache2

TEST_MODULE := build/test/mod_auth_memsession.so
MPMS       ?= event worker prefork

.PHONY: all module memsessionctl test-module deps test unit-test integration-test demo bench \
	install clean lint fuzz soak sanitize valgrind mutants deb package-test FORCE

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

# The module with the `fault-injection` feature (SetHandler memsession-test-panic), used only
# by tests/integration/test_faults_panic.py. Dev profile, its own target dir.
test-module: $(TEST_MODULE)

$(TEST_MODULE): FORCE
	MEMSESSION_FEATURES=fault-injection CARGO_TARGET_DIR=target/fault-injection \
		build-aux/link-module.sh debug $@

# The whole suite under each MPM in turn (MPMS="event" for one; PYTEST_ARGS for pytest).
# Every MPM runs even after one failed; the target fails at the end naming them.
integration-test: $(MODULE) $(TEST_MODULE)
	@failed=""; for mpm in $(MPMS); do \
		echo "== integration tests under the $$mpm MPM"; \
		MEMSESSION_MPM=$$mpm MEMSESSION_MODULE=$(CURDIR)/$(MODULE) \
		MEMSESSION_TEST_MODULE=$(CURDIR)/$(TEST_MODULE) \
		python3 -m pytest -q tests/integration $(PYTEST_ARGS) || failed="$$failed $$mpm"; \
	done; \
	[ -z "$$failed" ] || { echo "integration tests failed under:$$failed"; exit 1; }

test: deps
	$(MAKE) unit-test
	$(MAKE) integration-test
	$(MAKE) valgrind
	$(MAKE) package-test

# Contenders side by side (see bench/bench.py); BENCH_ARGS="--rounds 1 --seconds 3" for a quick look.
bench: deps $(MODULE) build/negotiate_load
	command -v wrk >/dev/null || apt-get install -y -q wrk
	python3 bench/bench.py $(BENCH_ARGS)

# The load client of the negotiate-fresh contender (a new Kerberos token per request).
build/negotiate_load: bench/negotiate_load.c
	@mkdir -p build
	$(CC) -O2 -Wall -Wextra -Werror $$(krb5-config --cflags krb5 gssapi) -o $@ $< \
		$$(krb5-config --libs krb5 gssapi)

# cargo-fuzz needs a nightly rustc (-Zsanitizer=address). With no nightly toolchain installed,
# the stable one is used with RUSTC_BOOTSTRAP=1, which unlocks the same flags. -Zplt=yes: the
# module crate's rlib carries the C shim, whose httpd symbols are absent from a fuzz binary;
# calls through the PLT are bound lazily, so they need not exist until called (never).
# Seeds are fuzz/corpus/<target>/ (kept in git); what the fuzzer finds new goes to
# fuzz/work/<target>/ (ignored) and reproducers of failures to fuzz/artifacts/<target>/.
FUZZ_SECONDS ?= 60
FUZZ_TOOLCHAIN := $(shell rustup toolchain list 2>/dev/null | grep -q '^nightly' && echo +nightly)
FUZZ_ENV := $(if $(FUZZ_TOOLCHAIN),,RUSTC_BOOTSTRAP=1) RUSTFLAGS="-Zplt=yes"
FUZZ_TARGETS = $(shell sed -n 's/^name = "\(.*\)"$$/\1/p' fuzz/Cargo.toml | grep -v -- -fuzz)

fuzz:
	command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz
	cd fuzz && $(FUZZ_ENV) cargo $(FUZZ_TOOLCHAIN) fuzz build
	@set -e; for t in $(FUZZ_TARGETS); do \
		mkdir -p fuzz/work/$$t; \
		echo "== fuzz $$t for $(FUZZ_SECONDS)s"; \
		(cd fuzz && $(FUZZ_ENV) cargo $(FUZZ_TOOLCHAIN) fuzz run $$t work/$$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 2>&1) \
			| tee fuzz/last-$$t.log | grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done)'; \
		grep -q '^Done' fuzz/last-$$t.log || { echo "fuzz target $$t failed: fuzz/last-$$t.log"; exit 1; }; \
	done

# SOAK_REQUESTS requests (wrk if installed, else a Python client) on one valid session; fails
# if a child's resident memory grows more than SOAK_MAX_GROWTH_KB. Not part of make test.
SOAK_REQUESTS ?= 200000
SOAK_MAX_GROWTH_KB ?= 2048
soak: deps $(MODULE)
	MEMSESSION_MODULE=$(CURDIR)/$(MODULE) python3 tests/soak/soak.py \
		--requests $(SOAK_REQUESTS) --max-growth-kb $(SOAK_MAX_GROWTH_KB) $(SOAK_ARGS)

# The unit tests under AddressSanitizer (nightly, or stable with RUSTC_BOOTSTRAP=1), leak
# checking on. It first proves the instrumentation is there: a planted use-after-free and a
# planted leak must be caught. The test binary links the C shim whole (one object per crate
# under the sanitizer), whose httpd symbols exist only in apache2: they are left unresolved
# and bound lazily through the PLT (never called by a unit test); APR is linked for real.
SANITIZE_RUSTFLAGS := -Zsanitizer=address -Zplt=yes -Clink-arg=-Wl,--unresolved-symbols=ignore-all \
	-Clink-arg=-Wl,-z,lazy -Clink-arg=-lapr-1
SANITIZE_ENV := $(if $(FUZZ_TOOLCHAIN),,RUSTC_BOOTSTRAP=1) RUSTFLAGS="$(SANITIZE_RUSTFLAGS)" \
	RUSTDOCFLAGS="-Zsanitizer=address" ASAN_OPTIONS=detect_leaks=1 CARGO_TARGET_DIR=target/asan
sanitize:
	tests/soak/prove-asan.sh "$(FUZZ_TOOLCHAIN)"
	$(SANITIZE_ENV) cargo $(FUZZ_TOOLCHAIN) test --lib --target x86_64-unknown-linux-gnu
	@for b in target/asan/x86_64-unknown-linux-gnu/debug/deps/memsession-*; do \
		[ -x "$$b" ] || continue; \
		nm "$$b" | grep -q __asan_report_load || { echo "$$b is not instrumented"; exit 1; }; \
		echo "asan: $$b is instrumented"; \
	done

# httpd -X (one process) with the module under valgrind memcheck, a few hundred requests of
# every kind; fails on any invalid access or definite leak in our code. Proves memcheck runs
# first (a planted invalid read must be reported).
valgrind: deps $(MODULE)
	command -v valgrind >/dev/null || apt-get install -y -q valgrind
	MEMSESSION_MODULE=$(CURDIR)/$(MODULE) python3 tests/soak/valgrind_httpd.py

# cargo-mutants (.cargo/mutants.toml) over the pure modules against `cargo test --lib`; the
# score and how long it takes are in docs/testing.md. Not part of make test: about 9 s per
# mutant, some 1700 mutants. Niced, MUTANTS_JOBS builds at a time (the machine is shared),
# linked with mold when installed. MUTANTS_MODULES narrows it (make mutants
# MUTANTS_MODULES="session web"); MUTANTS_ARGS adds options (--iterate re-runs only what was
# not caught last time, --baseline skip, --shard 1/4, --in-diff file.diff). Results in
# mutants.out/ (missed.txt: the survivors).
MUTANTS_MODULES ?= session web config session_store flow krb5 store
MUTANTS_JOBS    ?= 1
MUTANTS_ARGS    ?=
MUTANTS_RUSTFLAGS := $(if $(shell command -v mold),-C link-arg=-fuse-ld=mold)
mutants:
	command -v cargo-mutants >/dev/null || cargo install cargo-mutants --locked
	RUSTFLAGS="$(MUTANTS_RUSTFLAGS)" nice -n 19 cargo mutants --jobs $(MUTANTS_JOBS) \
		$(foreach m,$(MUTANTS_MODULES),--file 'src/$(m)/**') $(MUTANTS_ARGS)

demo: deps $(MODULE)
	demo/demo.sh

# What a Debian package lays out; every path honours DESTDIR (staged installs need no root).
SBINDIR        ?= $(PREFIX)/sbin
DOCDIR         ?= $(PREFIX)/share/doc/mod-auth-memsession
SYSTEMDUNITDIR ?= /lib/systemd/system
TMPFILESDIR    ?= /usr/lib/tmpfiles.d
CTL            := target/$(PROFILE)/memsessionctl
SECRET_FILE    ?= $(APACHE_CONFDIR)/memsession.secret

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
	@# fail2ban's filter and jail, as examples: installing a jail would enable it
	install -d $(DESTDIR)$(DOCDIR)/fail2ban/filter.d $(DESTDIR)$(DOCDIR)/fail2ban/jail.d
	install -m 0644 apache-conf/fail2ban/filter.d/apache-memsession.conf $(DESTDIR)$(DOCDIR)/fail2ban/filter.d/
	install -m 0644 apache-conf/fail2ban/jail.d/apache-memsession.conf $(DESTDIR)$(DOCDIR)/fail2ban/jail.d/
	@# The server secret (MemSessionSecretFile in auth_memsession.conf), only on a real install
	@# and only when none exists: replacing it would log every user out. Created 0600 from
	@# the start (umask), never readable by others even briefly.
	@if [ -z "$(DESTDIR)" ] && [ ! -e $(SECRET_FILE) ]; then \
		(umask 077 && head -c 32 /dev/urandom > $(SECRET_FILE)) && \
		echo "created the server secret $(SECRET_FILE) (root-only)"; \
	fi

# The Debian package, built by Debian's tooling (dpkg-buildpackage, debhelper, dh_apache2)
# from debian/, whose rules call `make module memsessionctl install` above. The version is
# Cargo.toml's; debian/changelog is written here from it. Output, .buildinfo and .changes in
# build/. Needs `make deps` (debhelper, apache2-dev, libclang-dev, libkrb5-dev) and cargo.
VERSION  := $(shell sed -n 's/^version = "\(.*\)"$$/\1/p' Cargo.toml | head -n 1)
DEB_ARCH := $(shell dpkg-architecture -qDEB_HOST_ARCH 2>/dev/null || echo amd64)
DEB_BASE := libapache2-mod-auth-memsession_$(VERSION)_$(DEB_ARCH)
DEB      := build/$(DEB_BASE).deb

deb:
	@mkdir -p build
	build-aux/deb-changelog.sh $(VERSION) > debian/changelog
	DEB_DESTDIR=build dpkg-buildpackage -b --no-sign \
		--buildinfo-file=build/$(DEB_BASE).buildinfo --buildinfo-option=-ubuild \
		--changes-file=build/$(DEB_BASE).changes --changes-option=-ubuild --post-clean
	@echo "built $(DEB)"

# As root on a machine it may change and must restore (CI's): builds the package, runs
# lintian (no errors or warnings allowed), installs it with apt-get, enables it with a2enmod, checks
# apache2ctl -M and -t, then remove and purge. tests/package/test_deb.sh says what it checks.
package-test: deps
	$(MAKE) deb
	tests/package/test_deb.sh $(DEB)

clean:
	cargo clean
	rm -rf build debian/changelog
