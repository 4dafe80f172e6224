# The two commands a fresh machine needs: `make run` and `make test`.
# Operators: `make install` (root) builds a release and installs authd as a
# socket-activated system service; `make uninstall` removes it, keeping state.
.PHONY: run test build bench install install-files uninstall deb clean

PREFIX ?= /usr
DESTDIR ?=
BINDIR := $(DESTDIR)$(PREFIX)/bin
UNITDIR := $(DESTDIR)$(PREFIX)/lib/systemd/system
CATALOGDIR := $(DESTDIR)$(PREFIX)/lib/systemd/catalog
SYSUSERSDIR := $(DESTDIR)$(PREFIX)/lib/sysusers.d
TMPFILESDIR := $(DESTDIR)$(PREFIX)/lib/tmpfiles.d
DOCDIR := $(DESTDIR)$(PREFIX)/share/doc/authd
CONFDIR := $(DESTDIR)/etc/authd
BASHCOMPDIR := $(DESTDIR)$(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR := $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions
FISHCOMPDIR := $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d
MANDIR := $(DESTDIR)$(PREFIX)/share/man
RELEASE_BINARY := .build/release/authd
RELEASE_AUTHCTL := .build/release/authctl
# Static Swift runtime: the installed binaries need only the system libraries.
RELEASE_FLAGS := -c release --static-swift-stdlib

run:
	scripts/run-dev.sh

test:
	scripts/test.sh

build:
	swift build $(RELEASE_FLAGS) --product authd
	swift build $(RELEASE_FLAGS) --product authctl

# The full benchmark (minutes); figures and method in BENCHMARKS.md.
bench: build
	swift build $(RELEASE_FLAGS) --product authbench
	.build/release/authbench

install: build
	$(MAKE) install-files

# Installs an already built release (also what the .deb and the systemd
# integration test use). On a live system (no DESTDIR) it also creates the
# user and folders, updates the journal catalog and reloads systemd.
install-files:
	test -x $(RELEASE_BINARY) && test -x $(RELEASE_AUTHCTL) || { echo "no release build: run 'make build' first" >&2; exit 1; }
	install -Dm0755 -s $(RELEASE_BINARY) $(BINDIR)/authd
	install -Dm0755 -s $(RELEASE_AUTHCTL) $(BINDIR)/authctl
	install -d $(BASHCOMPDIR) $(ZSHCOMPDIR) $(FISHCOMPDIR)
	$(RELEASE_AUTHCTL) --generate-completion-script bash | sed '1{/^#!/d}' >$(BASHCOMPDIR)/authctl
	$(RELEASE_AUTHCTL) --generate-completion-script zsh >$(ZSHCOMPDIR)/_authctl
	$(RELEASE_AUTHCTL) --generate-completion-script fish >$(FISHCOMPDIR)/authctl.fish
	chmod 0644 $(BASHCOMPDIR)/authctl $(ZSHCOMPDIR)/_authctl $(FISHCOMPDIR)/authctl.fish
	install -d $(UNITDIR) $(CATALOGDIR) $(SYSUSERSDIR) $(TMPFILESDIR) $(DOCDIR)
	sed 's|/usr/bin/authd|$(PREFIX)/bin/authd|' systemd/authd.service >$(UNITDIR)/authd.service
	chmod 0644 $(UNITDIR)/authd.service
	install -m0644 systemd/authd.socket $(UNITDIR)/authd.socket
	install -m0644 systemd/authd.catalog $(CATALOGDIR)/authd.catalog
	install -m0644 systemd/authd.sysusers $(SYSUSERSDIR)/authd.conf
	install -m0644 systemd/authd.tmpfiles $(TMPFILESDIR)/authd.conf
	install -m0644 README.md $(DOCDIR)/README.md
	install -m0644 protocol/protocol-v1.md protocol/openrpc.json $(DOCDIR)/
	install -Dm0644 man/authd.8 $(MANDIR)/man8/authd.8
	install -Dm0644 man/authd.conf.5 $(MANDIR)/man5/authd.conf.5
	install -Dm0644 man/authctl.1 $(MANDIR)/man1/authctl.1
	gzip -9nf $(MANDIR)/man8/authd.8 $(MANDIR)/man5/authd.conf.5 $(MANDIR)/man1/authctl.1
	install -m0644 systemd/authd.conf $(DOCDIR)/authd.conf.example
	install -Dm0644 systemd/authd-postgresql.conf $(DOCDIR)/examples/systemd/authd-postgresql.conf
	install -m0644 systemd/authd-metrics.service systemd/authd-metrics.timer $(DOCDIR)/examples/systemd/
	install -Dm0644 Examples/python/authd_client.py $(DOCDIR)/examples/python/authd_client.py
	install -d -m0755 $(CONFDIR)
	test -e $(CONFDIR)/authd.conf || install -m0644 systemd/authd.conf $(CONFDIR)/authd.conf
	if [ -z "$(DESTDIR)" ]; then \
	    systemd-sysusers authd.conf && \
	    systemd-tmpfiles --create authd.conf && \
	    journalctl --update-catalog && \
	    systemctl daemon-reload; \
	fi
	@echo "authd installed. Start it with: systemctl enable --now authd.socket"

uninstall:
	-systemctl disable --now authd.socket authd.service 2>/dev/null
	rm -f $(BINDIR)/authd $(BINDIR)/authctl $(UNITDIR)/authd.service $(UNITDIR)/authd.socket \
	    $(CATALOGDIR)/authd.catalog $(SYSUSERSDIR)/authd.conf $(TMPFILESDIR)/authd.conf \
	    $(BASHCOMPDIR)/authctl $(ZSHCOMPDIR)/_authctl $(FISHCOMPDIR)/authctl.fish \
	    $(MANDIR)/man8/authd.8.gz $(MANDIR)/man5/authd.conf.5.gz $(MANDIR)/man1/authctl.1.gz
	rm -rf $(DOCDIR)
	if [ -z "$(DESTDIR)" ]; then journalctl --update-catalog; systemctl daemon-reload; fi
	@echo "authd removed; its state in /var/lib/authd and /etc/authd are kept."

deb: build
	scripts/build-deb.sh

clean:
	rm -rf .build .venv run .sandbox
