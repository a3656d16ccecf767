# bash completion for lynkr. Generated from the Typer app by `lynkr completions bash`; do not edit.

_lynkr() {
    local cur="${COMP_WORDS[COMP_CWORD]}" prev="${COMP_WORDS[COMP_CWORD-1]}"
    local path="lynkr" i w
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        [ "$w" = "--" ] && return 0
        case "$path $w" in
            "lynkr code"|"lynkr codex"|"lynkr completions"|"lynkr config"|"lynkr config show"|"lynkr doctor"|"lynkr setup"|"lynkr start") path="$path $w" ;;
        esac
    done
    case "$path:$prev" in
        "lynkr code:--env-file") COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        "lynkr code:--port") return 0 ;;
        "lynkr codex:--env-file") COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        "lynkr codex:--port") return 0 ;;
        "lynkr completions:--write") COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        "lynkr config show:--env-file") COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        "lynkr doctor:--env-file") COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        "lynkr doctor:--timeout") return 0 ;;
        "lynkr setup:--env-file") COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        "lynkr setup:--provider") return 0 ;;
        "lynkr setup:--model") return 0 ;;
        "lynkr setup:--api-key") return 0 ;;
        "lynkr setup:--endpoint") return 0 ;;
        "lynkr setup:--num-ctx") return 0 ;;
        "lynkr setup:--tiers") COMPREPLY=($(compgen -W "none local-first cloud-first split" -- "$cur")); return 0 ;;
        "lynkr setup:--tier") return 0 ;;
        "lynkr setup:--set") return 0 ;;
        "lynkr setup:--port") return 0 ;;
        "lynkr start:--host") return 0 ;;
        "lynkr start:--port"|"lynkr start:-p") return 0 ;;
        "lynkr start:--env-file") COMPREPLY=($(compgen -f -- "$cur")); return 0 ;;
        "lynkr start:--log-level") COMPREPLY=($(compgen -W "debug info warning error" -- "$cur")); return 0 ;;
        "lynkr start:--workers"|"lynkr start:-w") return 0 ;;
    esac
    local words
    case "$path" in
        "lynkr") words="--version -V --help code codex completions config doctor setup start" ;;
        "lynkr code") words="--env-file --port --help" ;;
        "lynkr codex") words="--env-file --port --no-launch --help" ;;
        "lynkr completions") words="--write --help" ;;
        "lynkr config") words="--help show" ;;
        "lynkr config show") words="--env-file --json --all --help" ;;
        "lynkr doctor") words="--env-file --json --timeout --help" ;;
        "lynkr setup") words="--env-file --non-interactive --provider --model --api-key --endpoint --num-ctx --pull --no-pull --start-ollama --no-start-ollama --install-ollama --tiers --tier --set --port --check --no-check --yes -y --help" ;;
        "lynkr start") words="--host --port -p --env-file --log-level --workers -w --allow-unauthenticated --help" ;;
    esac
    COMPREPLY=($(compgen -W "$words" -- "$cur"))
}

complete -o default -F _lynkr lynkr
