// cordon's command line. Thin: each command parses its options and calls into
// session/, policy/, audit/. Commands are loaded lazily to keep start-up short.

import { Command, Option } from 'commander';
import { CordonError, EXIT, isCordonError } from '../errors.ts';
import { VERSION } from '../version.ts';
import { printError } from './output.ts';

export async function main(argv: string[]): Promise<number> {
  const program = new Command('cordon')
    .description('Contain AI agents: a sandbox they cannot widen, egress through a policy they cannot edit, an audit log they cannot rewrite.')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError(true)
    .enablePositionalOptions()
    .configureHelp({ sortSubcommands: false })
    .exitOverride()
    .addHelpText(
      'after',
      `
Examples:
  cordon run -- claude                  run Claude Code contained (policy: ~/.config/cordon/policy.yaml or the built-in default)
  cordon run --policy p.yaml -- bash     an interactive shell under a specific policy
  cordon policy explain ~/.ssh/id_ed25519 which rule decides about a path
  cordon audit verify                   check that nobody edited the audit log
  cordon doctor                         what this machine supports, and how to fix what it lacks

Exit status of "cordon run": the command's own status (128+n if killed by signal n);
124 when the session timeout expired; 125 when cordon refused or failed to start the sandbox;
126/127 when the command cannot be executed / is not found inside. Other commands: 0 ok, 1 a check failed, 2 usage.`,
    );

  let result = 0;
  const set = (n: number) => {
    result = n;
  };

  program
    .command('run')
    .description('run a command contained in a sandbox')
    .argument('<command...>', 'the command to run inside (put it after --)')
    .option('-p, --policy <file>', 'policy file (default: user config, then the built-in profile)')
    .option('-w, --workspace <dir>', 'directory the agent may write (default: the current directory)')
    .option('-t, --timeout <duration>', 'wall-clock limit, e.g. 30m or 2h (overrides limits.timeout)')
    .addOption(new Option('--tty', 'give the sandbox a terminal (default when stdin and stdout are terminals)'))
    .addOption(new Option('--no-tty', 'never give the sandbox a terminal'))
    .option('--dry-run', 'print the mount plan and the sandbox command line instead of running')
    .option('--keep-files', "with --dry-run: keep the session's generated files so the printed command line can be run by hand")
    .option('--json', 'with --dry-run: machine-readable output')
    .passThroughOptions()
    .action(async (command: string[], o) => set(await (await import('./cmd-run.ts')).cmdRun(command, o)));

  program
    .command('doctor')
    .description('check every prerequisite: works / missing / how to fix')
    .option('--json', 'machine-readable output')
    .action(async (o) => set(await (await import('./cmd-doctor.ts')).cmdDoctor(o)));

  const policy = program.command('policy').description('show, check and explain policies');
  policy
    .command('show')
    .description('the effective policy, with where each value came from')
    .option('-p, --policy <file>', 'policy file as for run')
    .option('-w, --workspace <dir>', 'workspace as for run (its trusted policy applies)')
    .option('--json', 'machine-readable output')
    .action(async (o) => set(await (await import('./cmd-policy.ts')).cmdPolicyShow(o)));
  policy
    .command('check')
    .description('validate a policy file; errors point at file, line and field')
    .argument('<file>', 'policy file')
    .option('--json', 'machine-readable output')
    .action(async (file: string, o) => set(await (await import('./cmd-policy.ts')).cmdPolicyCheck(file, o)));
  policy
    .command('explain')
    .description('which rule decides about a path (file access) or a host (network)')
    .argument('<target>', 'a path (/..., ~/..., ./...) or a host name, host:port or URL')
    .option('-p, --policy <file>', 'policy file as for run')
    .option('-w, --workspace <dir>', 'workspace as for run')
    .option('--method <method>', 'HTTP method for a host')
    .option('--json', 'machine-readable output')
    .action(async (target: string, o) => set(await (await import('./cmd-policy.ts')).cmdPolicyExplain(target, o)));
  policy
    .command('profiles')
    .description('list the built-in profiles a policy can extend')
    .option('--json', 'machine-readable output')
    .action(async (o) => set(await (await import('./cmd-policy.ts')).cmdPolicyProfiles(o)));
  policy
    .command('init')
    .description('write a starter policy to your user config (or --output)')
    .option('--profile <name>', 'profile to extend', 'generic')
    .option('-o, --output <file>', 'where to write it')
    .option('--force', 'overwrite an existing file')
    .action(async (o) => set(await (await import('./cmd-policy.ts')).cmdPolicyInit(o)));

  const audit = program.command('audit').description('read, verify and export the audit log');
  audit
    .command('tail')
    .description('the last records')
    .option('-n, --lines <n>', 'how many', '20')
    .option('-s, --session <id>', 'only this session')
    .option('--type <type>', 'only records of this type (e.g. session.end)')
    .option('-f, --follow', 'keep printing new records')
    .option('--json', 'one JSON object per line')
    .action(async (o) => set(await (await import('./cmd-audit.ts')).cmdAuditTail(o)));
  audit
    .command('verify')
    .description('check the hash chain: edits, deletions, reordering, truncation')
    .option('--json', 'machine-readable output')
    .action(async (o) => set(await (await import('./cmd-audit.ts')).cmdAuditVerify(o)));
  audit
    .command('export')
    .description('export records (with their chain) for archiving or a SIEM')
    .option('--jsonl', 'JSON Lines (the only format so far)', true)
    .option('-s, --session <id>', 'only this session')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(async (o) => set(await (await import('./cmd-audit.ts')).cmdAuditExport(o)));

  const secret = program
    .command('secret')
    .description('the vault: secrets stay on the host, the sandbox only ever sees placeholders')
    .addHelpText('after', '\nValues are never taken on the command line. See docs/secrets.md.');
  const vaultOption = () =>
    new Option('--vault <backend>', 'auto: the backend in use, else the Secret Service if available, else the encrypted file')
      .choices(['auto', 'keyring', 'file'])
      .default('auto');
  const valueHelp = `
The value is read from stdin (on a terminal: a prompt that does not echo), or from
--from-file / --from-env. There is deliberately no option or argument for the value
itself: command lines end up in shell history and in ps. From stdin and files exactly
one final newline ("\\n") is dropped; --raw keeps the bytes as they are.

Examples:
  cordon secret add github                          prompt for the value
  printf %s "$GITHUB_TOKEN" | cordon secret add github
  cordon secret add openai --from-env OPENAI_API_KEY --description "OpenAI, personal"
  cordon secret rotate github --from-file ~/new-token.txt`;
  for (const [verb, summary] of [
    ['add', 'store a new secret (--force replaces an existing one)'],
    ['rotate', 'replace the value of an existing secret (keeps created, sets rotated)'],
  ] as const) {
    const c = secret
      .command(verb)
      .description(summary)
      .argument('<name>', 'secret name: a-z 0-9 . _ - (what policies bind: credentials.bindings[].secret)')
      .option('--from-file <file>', 'read the value from a file')
      .option('--from-env <var>', 'read the value from an environment variable')
      .option('--raw', 'keep a final newline from stdin or the file')
      .option('--description <text>', verb === 'add' ? 'a note shown by list' : 'replace the note shown by list');
    if (verb === 'add') c.option('--force', 'replace an existing secret (as new: created now)');
    c.addOption(vaultOption())
      .option('--json', 'machine-readable output (metadata only, never the value)')
      // Unknown options and extra arguments reach the command, which refuses
      // them without repeating them: they may be a value typed inline.
      .allowExcessArguments(true)
      .allowUnknownOption(true)
      .addHelpText('after', valueHelp)
      .action(async (name: string, o, cmd: Command) => {
        const m = await import('./cmd-secret.ts');
        const extra = cmd.args.slice(1);
        set(await (verb === 'add' ? m.cmdSecretAdd(name, o, extra) : m.cmdSecretRotate(name, o, extra)));
      });
  }
  secret
    .command('list')
    .description('names and metadata (never values)')
    .addOption(vaultOption())
    .option('--json', 'machine-readable output')
    .action(async (o) => set(await (await import('./cmd-secret.ts')).cmdSecretList(o)));
  secret
    .command('rm')
    .description('delete a secret from the vault')
    .argument('<name>', 'secret name')
    .addOption(vaultOption())
    .option('--json', 'machine-readable output')
    .action(async (name: string, o) => set(await (await import('./cmd-secret.ts')).cmdSecretRm(name, o)));

  program
    .command('trust')
    .description("trust this workspace's .cordon/policy.yaml (exact content, by hash); it can only narrow your policy")
    .argument('[dir]', 'workspace', '.')
    .option('--yes', 'do not ask')
    .option('--list', 'list trusted workspaces')
    .option('--revoke', 'stop trusting the workspace policy')
    .option('--json', 'machine-readable output')
    .action(async (dir: string, o) => set(await (await import('./cmd-trust.ts')).cmdTrust(dir, o)));

  program
    .command('selftest')
    .description('attack your own setup: run the bypass battery under your policy and report what held')
    .option('-p, --policy <file>', 'policy under test (default: your user policy, else the built-in default)')
    .option('--backend <name>', 'backend under test', 'bwrap')
    .option('--only <classes>', 'only these bypass-matrix classes, e.g. 14 or 1-10,15')
    .option('--report <file.html>', 'also write a self-contained HTML report')
    .option('--keep', 'keep the fixture directory (fake home, workspace) for inspection')
    .option('--json', 'machine-readable output')
    .addHelpText('after', '\nExit status: 0 when nothing leaked and every probe ran; 1 otherwise.')
    .action(async (o) => set(await (await import('./cmd-selftest.ts')).cmdSelftest(o)));

  program
    .command('sessions')
    .description('list running sessions')
    .option('--json', 'machine-readable output')
    .action(async (o) => set(await (await import('./cmd-sessions.ts')).cmdSessions(o)));

  const token = program.command('token').description("a running session's credential placeholders");
  token
    .command('list')
    .description('bindings and their placeholders (prefix only), expiry and state')
    .option('-s, --session <id>', 'session (default: the only one running)')
    .option('--json', 'machine-readable output')
    .action(async (o) => set(await (await import('./cmd-sessions.ts')).cmdTokenList(o)));
  token
    .command('revoke')
    .description('revoke placeholders now: the next request that would use them fails')
    .argument('[secrets...]', 'secret names')
    .option('-s, --session <id>', 'session (default: the only one running)')
    .option('--all', 'every binding of the session')
    .option('--json', 'machine-readable output')
    .action(async (secrets: string[], o) => set(await (await import('./cmd-sessions.ts')).cmdTokenRevoke(secrets, o)));

  program
    .command('demo')
    .description('watch a scripted "agent" try the classic moves, and see each one contained')
    .option('--keep', 'keep the demo directory')
    .action(async (o) => set(await (await import('./cmd-demo.ts')).cmdDemo(o)));

  try {
    await program.parseAsync(argv, { from: 'user' });
    return result;
  } catch (e) {
    const ce = e as { code?: string; exitCode?: number };
    if (typeof ce.code === 'string' && ce.code.startsWith('commander.')) {
      if (ce.code === 'commander.helpDisplayed' || ce.code === 'commander.version' || ce.code === 'commander.help') return EXIT.ok;
      return EXIT.usage;
    }
    if (isCordonError(e)) {
      printError(e);
      return e.exitCode;
    }
    printError(new CordonError('CORDON_INTERNAL', (e as Error)?.stack ?? String(e)));
    return EXIT.cordon;
  }
}
