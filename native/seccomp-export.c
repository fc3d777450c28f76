/*
 * seccomp-export - compile cordon's seccomp rule text into a raw BPF program.
 *
 *   seccomp-export < rules.txt > filter.bpf
 *
 * Reads the rule text on stdin, builds a libseccomp filter for the NATIVE
 * architecture only, and writes the classic-BPF program (an array of
 * struct sock_filter, 8 bytes each) to stdout. bubblewrap loads that file with
 * `--seccomp FD` just before it execs the sandboxed command.
 *
 * The policy itself is data and lives in src/sandbox/seccomp/rules.ts; this
 * program only translates. It never loads a filter into its own process.
 *
 * Rule text, one directive per line. `#` starts a comment (also after a
 * directive); blank lines are ignored; tokens are separated by spaces/tabs.
 *
 *   default ACTION                  action for every syscall no rule matches
 *   badarch ACTION                  action for a syscall of a foreign ABI
 *                                   (i386 via int 0x80, and x32 on x86_64)
 *   deny SYSCALL ACTION             e.g. `deny ptrace EPERM`
 *   deny SYSCALL ACTION if COND [and COND]...
 *
 *   ACTION  := allow | kill | ENAME        kill = kill the whole process;
 *                                          ENAME = fail with that errno (EPERM,
 *                                          ENOSYS, ...; see errno_names below)
 *   SYSCALL := [?]NAME[@NR]
 *              ?     optional: silently skipped if libseccomp does not know
 *                    NAME on this architecture (e.g. `?umount` on x86_64).
 *                    Without `?` an unknown name is an error.
 *              @NR   the number to use when the installed libseccomp is older
 *                    than the syscall. Only accepted for NR >= 424: since Linux
 *                    5.1 every new syscall has the same number on every
 *                    architecture, so the number is not arch-specific. If
 *                    libseccomp knows NAME, its number must equal NR.
 *   COND    := ARG OP VALUE [MASK]
 *              ARG   0..5, the syscall argument index
 *              OP    eq ne lt le gt ge (64-bit unsigned comparisons) or
 *                    masked_eq, which is true when (arg & MASK) == VALUE and is
 *                    the only OP that takes (and requires) a MASK
 *              VALUE, MASK  decimal or 0x-hex, 0 .. 2^64-1
 *   Several CONDs in one rule must all hold (AND). libseccomp allows at most
 *   one comparison per argument in a rule; to express OR, write several deny
 *   lines for the same syscall.
 *
 * `default` and `badarch` must each appear exactly once: nothing is implied.
 *
 * Exit status: 0 success; 2 bad input (the message names the line); 1 any
 * other failure (libseccomp error, write error). Nothing is written to stdout
 * unless the whole filter was built.
 *
 * A note on argument width: the kernel truncates `int` arguments to 32 bits,
 * but seccomp compares all 64 bits of the register. A rule `socket if 0 eq 17`
 * is therefore bypassed by passing 0xffffffff00000011. Rules on int arguments
 * must use `masked_eq VALUE 0xffffffff` (rules.ts does).
 *
 * Foreign ABIs on x86_64: libseccomp 2.5 emits, for the native x86_64 arch,
 * a check `nr >= 0x40000000 (the x32 bit) && nr != -1 -> badarch action`, so
 * with `badarch kill` both x32 calls and i386 `int 0x80` calls kill the process.
 * test/native/seccomp.test.ts proves it with a real x32 and int 0x80 syscall.
 */

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <seccomp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_RULES_TEXT (1024 * 1024) /* a policy is a few KiB; refuse absurd input */
#define MAX_TOKENS 32
#define MAX_CONDS 6 /* one per argument at most */
#define FIRST_UNIFIED_NR 424 /* pidfd_send_signal: first syscall numbered alike everywhere */

enum exit_code { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_BAD_INPUT = 2 };

/* ------------------------------------------------------------------ errors */

static void die(int code, const char *fmt, ...) __attribute__((noreturn, format(printf, 2, 3)));
static void die(int code, const char *fmt, ...) {
	va_list ap;
	fputs("seccomp-export: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* The line currently parsed, so every input error can name it. */
static unsigned current_line;

static void bad_line(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void bad_line(const char *fmt, ...) {
	va_list ap;
	fprintf(stderr, "seccomp-export: line %u: ", current_line);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_BAD_INPUT);
}

/* ------------------------------------------------------------ vocabulary */

/* The errno names a rule may use. Symbolic only: a typo cannot silently become
 * a different number. Add names here when a rule needs them. */
#define E(name) { #name, name }
static const struct {
	const char *name;
	int value;
} errno_names[] = {
	E(EPERM),  E(ENOENT), E(EIO),        E(EBADF),     E(EAGAIN),          E(ENOMEM),
	E(EACCES), E(EFAULT), E(EBUSY),      E(EEXIST),    E(ENODEV),          E(EINVAL),
	E(ENOTTY), E(ENOSPC), E(EROFS),      E(ENOSYS),    E(EOPNOTSUPP),      E(EAFNOSUPPORT),
	E(ENXIO),  E(ENOTSUP), E(EPFNOSUPPORT), E(ESOCKTNOSUPPORT), E(EPROTONOSUPPORT),
};
#undef E

static const struct {
	const char *name;
	enum scmp_compare op;
} compare_ops[] = {
	{ "eq", SCMP_CMP_EQ }, { "ne", SCMP_CMP_NE }, { "lt", SCMP_CMP_LT },
	{ "le", SCMP_CMP_LE }, { "gt", SCMP_CMP_GT }, { "ge", SCMP_CMP_GE },
	{ "masked_eq", SCMP_CMP_MASKED_EQ },
};

/* ACTION := allow | kill | ENAME. Returns false if the token is none of them. */
static bool parse_action(const char *tok, uint32_t *action) {
	if (strcmp(tok, "allow") == 0) {
		*action = SCMP_ACT_ALLOW;
		return true;
	}
	if (strcmp(tok, "kill") == 0) {
		/* KILL_PROCESS, not KILL_THREAD: a half-killed multi-threaded
		 * process is a confusing state to leave behind. */
		*action = SCMP_ACT_KILL_PROCESS;
		return true;
	}
	for (size_t i = 0; i < sizeof errno_names / sizeof errno_names[0]; i++) {
		if (strcmp(tok, errno_names[i].name) == 0) {
			*action = SCMP_ACT_ERRNO((uint32_t)errno_names[i].value);
			return true;
		}
	}
	return false;
}

/* Decimal or 0x-hex, the whole token, no sign, no octal surprise. */
static bool parse_u64(const char *tok, uint64_t *out) {
	int base = 10;
	const char *digits = tok;
	if (tok[0] == '0' && (tok[1] == 'x' || tok[1] == 'X')) {
		base = 16;
		digits = tok + 2;
	} else if (tok[0] == '0' && tok[1] != '\0') {
		return false; /* "017" would be octal to strtoull: refuse it */
	}
	if (*digits == '\0')
		return false;
	for (const char *p = digits; *p; p++) {
		if (base == 16 ? !isxdigit((unsigned char)*p) : !isdigit((unsigned char)*p))
			return false;
	}
	errno = 0;
	char *end = NULL;
	unsigned long long v = strtoull(digits, &end, base);
	if (errno != 0 || *end != '\0')
		return false;
	*out = (uint64_t)v;
	return true;
}

/* ------------------------------------------------------------------ model */

struct rule {
	unsigned line;
	int nr;             /* resolved syscall number */
	uint32_t action;
	unsigned nconds;
	struct scmp_arg_cmp conds[MAX_CONDS];
};

struct policy {
	bool have_default, have_badarch;
	uint32_t default_action, badarch_action;
	struct rule *rules;
	size_t nrules, cap;
};

static void add_rule(struct policy *p, const struct rule *r) {
	if (p->nrules == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 64;
		struct rule *grown = realloc(p->rules, cap * sizeof *grown);
		if (!grown)
			die(EXIT_FAIL, "out of memory");
		p->rules = grown;
		p->cap = cap;
	}
	p->rules[p->nrules++] = *r;
}

/* Resolve [?]NAME[@NR]. Returns false for an optional syscall this
 * architecture does not have (the caller skips the line). */
static bool resolve_syscall(const char *spec, int *nr_out) {
	bool optional = false;
	if (*spec == '?') {
		optional = true;
		spec++;
	}

	char name[128];
	long fallback = -1;
	const char *at = strchr(spec, '@');
	size_t len = at ? (size_t)(at - spec) : strlen(spec);
	if (len == 0 || len >= sizeof name)
		bad_line("bad syscall name '%s'", spec);
	memcpy(name, spec, len);
	name[len] = '\0';
	for (size_t i = 0; i < len; i++) {
		if (!islower((unsigned char)name[i]) && !isdigit((unsigned char)name[i]) && name[i] != '_')
			bad_line("bad syscall name '%s'", name);
	}
	if (at) {
		uint64_t v;
		if (!parse_u64(at + 1, &v) || v < FIRST_UNIFIED_NR || v > 4095)
			bad_line("'%s': @NR must be a syscall number >= %d (numbers below differ per architecture)",
			         spec, FIRST_UNIFIED_NR);
		fallback = (long)v;
	}

	/* libseccomp answers a negative "pseudo syscall" number for names that
	 * exist on some architecture but not this one (umount on x86_64), and
	 * __NR_SCMP_ERROR for names it does not know at all. Both mean: this
	 * architecture has no such syscall as far as libseccomp knows. */
	int nr = seccomp_syscall_resolve_name(name);
	if (nr >= 0) {
		if (fallback >= 0 && nr != fallback)
			bad_line("'%s': libseccomp numbers it %d, the rule says %ld", name, nr, fallback);
		*nr_out = nr;
		return true;
	}
	if (fallback >= 0 && nr == __NR_SCMP_ERROR) {
		*nr_out = (int)fallback;
		return true;
	}
	if (optional)
		return false;
	bad_line("unknown syscall '%s' on this architecture (prefix it with '?' if it is optional)", name);
}

static void parse_condition(char **tok, unsigned ntok, unsigned *i, struct rule *r) {
	/* ARG OP VALUE [MASK] */
	if (*i + 3 > ntok)
		bad_line("incomplete condition: expected ARG OP VALUE [MASK]");
	if (r->nconds == MAX_CONDS)
		bad_line("too many conditions");

	const char *arg_tok = tok[(*i)++];
	if (strlen(arg_tok) != 1 || arg_tok[0] < '0' || arg_tok[0] > '5')
		bad_line("argument index must be 0..5, got '%s'", arg_tok);
	unsigned arg = (unsigned)(arg_tok[0] - '0');
	for (unsigned k = 0; k < r->nconds; k++) {
		if (r->conds[k].arg == arg)
			bad_line("argument %u compared twice in one rule (libseccomp cannot; use two deny lines)", arg);
	}

	const char *op_tok = tok[(*i)++];
	bool found = false;
	enum scmp_compare op = SCMP_CMP_EQ;
	for (size_t k = 0; k < sizeof compare_ops / sizeof compare_ops[0]; k++) {
		if (strcmp(op_tok, compare_ops[k].name) == 0) {
			op = compare_ops[k].op;
			found = true;
		}
	}
	if (!found)
		bad_line("unknown comparison '%s' (eq ne lt le gt ge masked_eq)", op_tok);

	uint64_t value, mask = 0;
	if (!parse_u64(tok[*i], &value))
		bad_line("bad value '%s' (decimal or 0x-hex)", tok[*i]);
	(*i)++;
	if (op == SCMP_CMP_MASKED_EQ) {
		if (*i >= ntok || !parse_u64(tok[*i], &mask))
			bad_line("masked_eq needs VALUE MASK");
		(*i)++;
		if ((value & ~mask) != 0)
			bad_line("masked_eq VALUE has bits outside MASK: the rule could never match");
	}

	/* For masked_eq libseccomp takes (mask, value); for the others (value). */
	struct scmp_arg_cmp *c = &r->conds[r->nconds++];
	c->arg = arg;
	c->op = op;
	c->datum_a = op == SCMP_CMP_MASKED_EQ ? mask : value;
	c->datum_b = op == SCMP_CMP_MASKED_EQ ? value : 0;
}

static void parse_line(char *line, struct policy *p) {
	char *hash = strchr(line, '#');
	if (hash)
		*hash = '\0';

	char *tok[MAX_TOKENS];
	unsigned ntok = 0;
	for (char *save = NULL, *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (ntok == MAX_TOKENS)
			bad_line("too many tokens");
		tok[ntok++] = t;
	}
	if (ntok == 0)
		return;

	if (strcmp(tok[0], "default") == 0 || strcmp(tok[0], "badarch") == 0) {
		bool is_default = tok[0][0] == 'd';
		bool *seen = is_default ? &p->have_default : &p->have_badarch;
		uint32_t *action = is_default ? &p->default_action : &p->badarch_action;
		if (ntok != 2)
			bad_line("expected '%s ACTION'", tok[0]);
		if (*seen)
			bad_line("'%s' given twice", tok[0]);
		if (!parse_action(tok[1], action))
			bad_line("unknown action '%s' (allow, kill or an errno name)", tok[1]);
		*seen = true;
		return;
	}

	if (strcmp(tok[0], "deny") != 0)
		bad_line("unknown directive '%s' (default, badarch, deny)", tok[0]);
	if (ntok < 3)
		bad_line("expected 'deny SYSCALL ACTION [if ARG OP VALUE [MASK] [and ...]]'");

	struct rule r = { .line = current_line };
	if (!parse_action(tok[2], &r.action))
		bad_line("unknown action '%s' (allow, kill or an errno name)", tok[2]);
	if (r.action == SCMP_ACT_ALLOW)
		bad_line("a deny rule cannot allow");
	/* Resolve after the cheap checks so a typo in the action is reported
	 * even on an optional syscall this architecture lacks. */
	bool present = resolve_syscall(tok[1], &r.nr);

	unsigned i = 3;
	if (i < ntok) {
		if (strcmp(tok[i], "if") != 0)
			bad_line("expected 'if' after the action, got '%s'", tok[i]);
		i++;
		parse_condition(tok, ntok, &i, &r);
		while (i < ntok) {
			if (strcmp(tok[i], "and") != 0)
				bad_line("expected 'and' between conditions, got '%s'", tok[i]);
			i++;
			parse_condition(tok, ntok, &i, &r);
		}
	}
	if (present)
		add_rule(p, &r);
}

static char *read_all_stdin(size_t *len_out) {
	size_t cap = 16384, len = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		die(EXIT_FAIL, "out of memory");
	for (;;) {
		if (len == cap) {
			if (cap >= MAX_RULES_TEXT)
				die(EXIT_BAD_INPUT, "input larger than %d bytes", MAX_RULES_TEXT);
			cap *= 2;
			char *grown = realloc(buf, cap + 1);
			if (!grown)
				die(EXIT_FAIL, "out of memory");
			buf = grown;
		}
		ssize_t n = read(STDIN_FILENO, buf + len, cap - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die(EXIT_FAIL, "reading stdin: %s", strerror(errno));
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	*len_out = len;
	return buf;
}

/* ------------------------------------------------------------------- main */

int main(int argc, char **argv) {
	(void)argv;
	if (argc != 1)
		die(EXIT_BAD_INPUT, "usage: seccomp-export < rules > filter.bpf");

	size_t len;
	char *text = read_all_stdin(&len);
	if (memchr(text, '\0', len))
		die(EXIT_BAD_INPUT, "input contains a NUL byte");

	struct policy p = { 0 };
	/* Split lines by hand: strtok would merge blank lines and break the
	 * line numbers that error messages cite. */
	char *cursor = text;
	while (cursor && *cursor) {
		current_line++;
		char *nl = strchr(cursor, '\n');
		if (nl)
			*nl = '\0';
		parse_line(cursor, &p);
		cursor = nl ? nl + 1 : NULL;
	}
	current_line = 0;
	if (!p.have_default)
		die(EXIT_BAD_INPUT, "no 'default ACTION' line: the default must be explicit");
	if (!p.have_badarch)
		die(EXIT_BAD_INPUT, "no 'badarch ACTION' line: the foreign-ABI action must be explicit");

	/* seccomp_init adds the native architecture and nothing else: every
	 * other ABI (i386 on x86_64, arm on arm64) takes the badarch action. */
	scmp_filter_ctx ctx = seccomp_init(p.default_action);
	if (!ctx)
		die(EXIT_FAIL, "seccomp_init failed");
	int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, p.badarch_action);
	if (rc < 0)
		die(EXIT_FAIL, "setting the badarch action: %s", strerror(-rc));
	/* Level 2 sorts the syscall checks into a binary tree: a lookup costs
	 * O(log n) comparisons instead of a linear scan through every rule. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2);
	if (rc < 0)
		die(EXIT_FAIL, "enabling the binary-tree optimization: %s", strerror(-rc));

	for (size_t i = 0; i < p.nrules; i++) {
		const struct rule *r = &p.rules[i];
		current_line = r->line;
		if (r->action == p.default_action)
			bad_line("the rule's action equals the default action: it would do nothing");
		/* _exact: fail rather than let libseccomp rewrite the rule (it
		 * would otherwise, e.g., transform rules for multiplexed calls). */
		rc = seccomp_rule_add_exact_array(ctx, r->action, r->nr, r->nconds, r->conds);
		if (rc < 0)
			bad_line("libseccomp rejected the rule: %s", strerror(-rc));
	}

	rc = seccomp_export_bpf(ctx, STDOUT_FILENO);
	if (rc < 0)
		die(EXIT_FAIL, "exporting the BPF program: %s", strerror(-rc));
	seccomp_release(ctx);
	free(p.rules);
	free(text);
	return EXIT_OK;
}
