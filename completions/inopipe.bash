# bash completion for inopipe's tools: options come from the tool itself
# (`TOOL - --generate-bash-completion`), so they never drift from --help;
# anything else completes as file names. Installed once per tool name
# under share/bash-completion/completions/.
_inopipe() {
	local cur=${COMP_WORDS[COMP_CWORD]}
	COMPREPLY=()
	if [[ $cur == -* ]]; then
		local opts
		opts=$("${COMP_WORDS[0]}" - --generate-bash-completion 2>/dev/null)
		mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
	fi
}
complete -o default -o bashdefault -F _inopipe inowait evfilter evbatch rpush failreplay sersync2inopipe inopipe-run
