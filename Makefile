# tern: the two commands of the README, and the steps behind them.
#   make        optimised build into build/
#   make run    install what is missing, build, start ternd on 127.0.0.1:2525
#   make test   install, build (optimised and ASan/UBSan), check the man pages,
#               run every test
PYTHON ?= /usr/bin/python3
MESON_ASAN = -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debug


# libFuzzer harnesses (tests/fuzz/fuzz_*.c) over the pure code, built by
# clang with ASan and UBSan into build-fuzz/. `make fuzz` builds them,
# `make fuzz-run` runs each for FUZZ_SECONDS on a copy of its seed corpus.
FUZZERS = command addr params data conf proxy auth reply maildrop cram odmr hold dkimtags \
	dkimcanon dkimverify spf_record spf_macro msghead dmarc tlsa dialog milter capture lint mtasts tlsrpt fault jsonw
FUZZ_SECONDS ?= 10
FUZZ_LIB = src/lib/buf.c src/lib/addr.c src/lib/idna.c src/lib/log.c src/lib/event.c src/lib/conf.c src/lib/esc.c \
	src/lib/util.c src/lib/cidr.c src/lib/aliases.c src/lib/msghead.c src/net/smtp.c src/smtpd/parse.c src/smtpd/data.c \
	src/policy/auth.c src/policy/odmr.c src/policy/limits.c src/smtpd/proxy.c src/smtpd/dropfile.c \
	src/policy/hold.c src/lib/hmap.c $(wildcard src/dkim/*.c) src/policy/spf.c \
	src/policy/spf_record.c src/policy/spf_macro.c src/policy/dmarc.c src/net/tlsa.c src/net/mtasts.c \
	src/net/tlsrpt.c \
	src/tools/probe/dialog.c src/milter/proto.c src/policy/capture.c src/http/query.c \
	src/smtpd/lint.c src/policy/fault.c src/lib/jsonw.c
FUZZ_FLAGS = -g -O1 -std=c17 -D_GNU_SOURCE -Isrc -Wall -Wextra -Werror \
	-fno-sanitize-recover=undefined
FUZZ_CFLAGS = $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined
# The code under test is compiled once (instrumented, without libFuzzer's
# main) and linked into every harness: 26 harnesses each compiling all of
# it took minutes of make test.
FUZZ_OBJ_CFLAGS = $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined
FUZZ_OBJS = $(FUZZ_LIB:%.c=build-fuzz/obj/%.o)
FUZZ_LIBS = -lcrypto -lcrypt -lsystemd -lpthread -lpsl -lidn2 -ljansson
FUZZ_BINS = $(FUZZERS:%=build-fuzz/fuzz_%)

.PHONY: all deps test-deps run run-capture test soak unit blackbox asan blackbox-asan clean fuzz fuzz-run install \
	install-sendmail bench bench-drain bench-queue bench-capture layers man-check

all: build/build.ninja
	ninja -C build

build/build.ninja:
	meson setup build --buildtype=release

build-asan/build.ninja:
	CC=clang meson setup build-asan $(MESON_ASAN)

asan: build-asan/build.ninja
	ninja -C build-asan

deps:
	@scripts/install-deps

test-deps:
	@scripts/install-deps test

# A self-signed certificate on first start, so that STARTTLS works at once.
TLS_DIR = var/tls
$(TLS_DIR)/cert.pem:
	mkdir -p $(TLS_DIR)
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 825 \
		-subj "/CN=$$(hostname)" -keyout $(TLS_DIR)/key.pem -out $(TLS_DIR)/cert.pem 2>/dev/null
	chmod 600 $(TLS_DIR)/key.pem

run: deps all $(TLS_DIR)/cert.pem
	build/ternd -o tls_cert=$(TLS_DIR)/cert.pem -o tls_key=$(TLS_DIR)/key.pem

# The test mode: a mail catcher on 127.0.0.1:2525 that delivers nothing,
# its web page and API on http://127.0.0.1:8025/ (docs/API.md).
run-capture: deps all $(TLS_DIR)/cert.pem
	build/ternd -o tls_cert=$(TLS_DIR)/cert.pem -o tls_key=$(TLS_DIR)/key.pem \
		-o capture=yes -o http_listen=127.0.0.1:8025

# make install [PREFIX=/usr/local] [DESTDIR=]: the binaries; the man pages
# in $(PREFIX)/share/man; tern-probe conform's dialogues in
# $(PREFIX)/share/tern/conform (found there from $(PREFIX)/bin); the systemd unit in $(PREFIX)/lib/systemd/system
# (for /usr/local, the place systemd reads units an administrator installed
# by hand; /etc/systemd/system stays the administrator's own, for
# `systemctl edit`), its ExecStart made to match PREFIX; a configuration in
# /etc/tern (kept if there is one) that logs to the journal and keeps the
# spool and mailboxes under /var/lib/tern (the unit's ReadWritePaths); the
# system user tern and group tern-drop. tern-sendmail is setgid DROP_GROUP
# (maildrop_group), which may leave mail in spool_dir/maildrop; without
# that group it is installed plain.
PREFIX ?= /usr/local
MANDIR ?= $(PREFIX)/share/man
UNITDIR ?= $(PREFIX)/lib/systemd/system
MAN_PAGES = $(wildcard man/*.[0-9])
DROP_GROUP ?= tern-drop
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/bin $(DESTDIR)/etc/tern \
		$(DESTDIR)$(UNITDIR)
	install -d -m 700 $(DESTDIR)/var/lib/tern/spool $(DESTDIR)/var/lib/tern/mail
	install -m 755 build/ternd $(DESTDIR)$(PREFIX)/sbin/ternd
	install -m 755 build/ternctl $(DESTDIR)$(PREFIX)/sbin/ternctl
	install -m 755 build/tern-probe $(DESTDIR)$(PREFIX)/bin/tern-probe
	install -d $(DESTDIR)$(PREFIX)/share/tern/conform
	install -m 644 conform/*.dlg $(DESTDIR)$(PREFIX)/share/tern/conform/
	for p in $(MAN_PAGES); do \
		d=$(DESTDIR)$(MANDIR)/man$${p##*.}; install -d $$d && install -m 644 $$p $$d/ || exit 1; \
	done
	sed 's|/usr/local/sbin/ternd|$(PREFIX)/sbin/ternd|' etc/ternd.service > $(DESTDIR)$(UNITDIR)/ternd.service
	chmod 644 $(DESTDIR)$(UNITDIR)/ternd.service
	[ -e $(DESTDIR)/etc/tern/tern.conf ] || sed \
		-e 's|^spool_dir = ./var/spool|spool_dir = /var/lib/tern/spool|' \
		-e 's|^mail_dir = ./var/mail|mail_dir = /var/lib/tern/mail|' \
		-e 's|^log_target = stderr|log_target = journal|' \
		etc/tern.conf > $(DESTDIR)/etc/tern/tern.conf
	[ -n "$(DESTDIR)" ] || scripts/add-user
	install -m 755 build/tern-sendmail $(DESTDIR)$(PREFIX)/sbin/tern-sendmail
	if getent group $(DROP_GROUP) >/dev/null; then \
		chgrp $(DROP_GROUP) $(DESTDIR)$(PREFIX)/sbin/tern-sendmail && \
		chmod 2755 $(DESTDIR)$(PREFIX)/sbin/tern-sendmail; \
	else echo "note: no group $(DROP_GROUP): tern-sendmail is not setgid" >&2; fi
	[ -n "$(DESTDIR)" ] || [ ! -d /run/systemd/system ] || systemctl daemon-reload
	@echo "installed: $(PREFIX)/sbin/ternd -c /etc/tern/tern.conf; systemctl enable --now ternd"

# make install-sendmail: sendmail, mailq and newaliases as links to
# tern-sendmail (the mode follows the name). Never over another mail
# system's: each must be missing or tern's already, else nothing changes;
# FORCE=1 keeps the other one as NAME.pre-tern.
SENDMAIL_LINKS = /usr/sbin/sendmail /usr/bin/mailq /usr/bin/newaliases
install-sendmail: install
	@for l in $(SENDMAIL_LINKS); do t=$(DESTDIR)$$l; \
		[ -e "$$t" ] || [ -L "$$t" ] || continue; \
		[ "$$(readlink "$$t")" = "$(PREFIX)/sbin/tern-sendmail" ] && continue; \
		[ "$(FORCE)" = 1 ] || { echo "install-sendmail: $$t exists (another mail system's):" \
			"remove it, or FORCE=1 to keep it as $$t.pre-tern" >&2; exit 1; }; \
	done
	@for l in $(SENDMAIL_LINKS); do t=$(DESTDIR)$$l; \
		[ "$$(readlink "$$t")" = "$(PREFIX)/sbin/tern-sendmail" ] && continue; \
		if [ -e "$$t" ] || [ -L "$$t" ]; then mv "$$t" "$$t.pre-tern"; fi; \
		install -d "$$(dirname "$$t")" && ln -s $(PREFIX)/sbin/tern-sendmail "$$t" && \
		echo "install-sendmail: $$l -> $(PREFIX)/sbin/tern-sendmail"; \
	done

unit: all
	meson test -C build --print-errorlogs

blackbox: all
	$(PYTHON) -m pytest -q tests/blackbox

blackbox-asan: asan
	PYTHON=$(PYTHON) scripts/blackbox-both --asan

.SECONDARY: $(FUZZ_OBJS)
build-fuzz/obj/%.o: %.c $(wildcard src/*/*.h)
	@mkdir -p $(dir $@)
	clang $(FUZZ_OBJ_CFLAGS) -c -o $@ $<

build-fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_OBJS) $(wildcard src/*/*.h)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_OBJS) $(FUZZ_LIBS)

fuzz: $(FUZZ_BINS)

# Each harness for FUZZ_SECONDS; new inputs go to build-fuzz/corpus-NAME,
# the seeds in tests/fuzz/corpus/NAME stay as they are.
fuzz-run: fuzz
	@for f in $(FUZZERS); do \
		mkdir -p build-fuzz/corpus-$$f; \
		echo "fuzz_$$f: $(FUZZ_SECONDS) s"; \
		build-fuzz/fuzz_$$f -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=10 \
			-print_final_stats=1 build-fuzz/corpus-$$f tests/fuzz/corpus/$$f \
			> build-fuzz/fuzz_$$f.log 2>&1 \
			|| { tail -60 build-fuzz/fuzz_$$f.log; exit 1; }; \
		grep -E '^Done [0-9]+ runs' build-fuzz/fuzz_$$f.log || true; \
	done

# The include graph against the layer ladder (docs/ARCHITECTURE.md).
layers:
	$(PYTHON) scripts/check-layers

# Every page in man/ through `mandoc -T lint -W warning`, and the pages
# against the code: every configuration key, every option.
man-check:
	$(PYTHON) scripts/check-man

test: test-deps
	$(PYTHON) scripts/check-layers
	$(PYTHON) scripts/check-man
	$(MAKE) all asan
	meson test -C build --print-errorlogs
	meson test -C build-asan --print-errorlogs
	PYTHON=$(PYTHON) scripts/blackbox-both
	$(MAKE) fuzz-run
	$(PYTHON) tests/reliability/run --short

# The reliability suite's full run: kill -9 at random moments, many times
# (tests/reliability/run; see its header); then the kill9 scenarios with
# Postfix in ternd's place, side by side (docs/RELIABILITY.md), at full
# speed and at a rate both sustain, at the same kill moments (one seed).
SOAK_SEED ?= $(shell date +%s)
soak: all
	$(PYTHON) tests/reliability/run --seed $(SOAK_SEED)
	$(PYTHON) tests/reliability/run --seed $(SOAK_SEED) --causes --rate 10 kill9-load kill9-slow-hop
	$(PYTHON) tests/reliability/run --seed $(SOAK_SEED) --server postfix --causes \
		kill9-load kill9-slow-hop
	$(PYTHON) tests/reliability/run --seed $(SOAK_SEED) --server postfix --causes --rate 10 \
		kill9-load kill9-slow-hop

clean:
	rm -rf build build-asan build-fuzz

# The benchmark against Postfix, Exim and OpenSMTPD (root; see bench/README.md).
# BENCH_QUICK=1 for a short run.
bench: all
	$(PYTHON) bench/run

# How fast a deep queue drains (root; DRAIN="5000 50000" for other depths).
bench-drain: all
	$(PYTHON) bench/drain $(DRAIN)

# A deep queue with the next hop down, ternd beside Postfix (root; QUEUE="100000
# 500000" for other depths, default 500,000). Writes docs/PERFORMANCE-QUEUE.md.
bench-queue: all
	$(PYTHON) bench/queue --doc $(QUEUE)

# The test mode beside MailDev (root; npm installs MailDev into bench/work;
# BENCH_QUICK=1 for a short run). Writes docs/PERFORMANCE-CAPTURE.md.
bench-capture: all
	$(PYTHON) bench/capture
