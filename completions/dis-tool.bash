# bash completion for dis-tool                                      -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/dis-tool.

_dis_tool_bdfs() {
    local d
    for d in /sys/bus/pci/devices/*; do
        [ -e "$d" ] && printf '%s\n' "${d##*/}"
    done
}

# Fabric device ids of the lending pool (asks the fabric's daemons; nothing when none runs).
_dis_tool_fdids() {
    "${COMP_WORDS[0]}" device list -o csv 2>/dev/null | tail -n +2 | cut -d, -f1
}

_dis_tool() {
    local cur prev words cword
    if declare -F _init_completion >/dev/null; then
        _init_completion || return
    else
        cur=${COMP_WORDS[COMP_CWORD]}
        prev=${COMP_WORDS[COMP_CWORD - 1]}
        words=("${COMP_WORDS[@]}")
        cword=$COMP_CWORD
    fi

    local global="-o --output -v --verbose -h --help --version"
    local nouns="pci iommu p2p device fabric topology probe segment bench exporter monitor diag qualify"
    local src="--dump --sysfs-root"
    local fab="--fabric"
    local bench_common="-r --remote-node -s --sizes -n --iterations -w --warmup -d --duration
        --cpu --remote-cpu --no-pin --baseline --no-baseline --no-spawn --timeout -a --adapter --fabric
        --local-node"

    # Values of options that take one.
    case $prev in
    -o | --output)
        COMPREPLY=($(compgen -W "table json csv" -- "$cur"))
        return
        ;;
    -V)
        COMPREPLY=($(compgen -W "0 1 9" -- "$cur"))
        return
        ;;
    --dump | -c | --config | --basic-auth | --state | -p | --plan | --junit | --report)
        COMPREPLY=($(compgen -f -- "$cur"))
        return
        ;;
    --sysfs-root | --fabric)
        COMPREPLY=($(compgen -d -- "$cur"))
        return
        ;;
    -m | --mode)
        COMPREPLY=($(compgen -W "wait sleep poll callback" -- "$cur"))
        return
        ;;
    -n | --nodes | --iterations | -w | --warmup | -d | --duration | --cpu | --remote-cpu | \
        --timeout | --timeout-ms | -a | --adapter | --local-node | --node | -r | --remote-node | \
        -s | --sizes | --vector | --window-size | --idle-timeout | --listen | --fabric-timeout | \
        --delay | --node-timeout | --pcie-interval | \
        --lease | --lease-id | --reason | --since | --limit | --lendable)
        return
        ;;
    esac

    # The noun and verb typed so far (skipping global options).
    local i noun="" verb=""
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
        -o | --output) ((i++)) ;;
        -*) ;;
        *)
            if [ -z "$noun" ]; then
                noun=${words[i]}
            elif [ -z "$verb" ]; then
                verb=${words[i]}
            fi
            ;;
        esac
    done

    local verbs="" opts="" bdfs=0 fdids=0
    case $noun in
    "") COMPREPLY=($(compgen -W "$nouns $global" -- "$cur")); return ;;
    pci)
        verbs="list tree show"
        opts="$src"
        [ "$verb" = show ] && bdfs=1
        ;;
    iommu) opts="$src"; bdfs=1 ;;
    p2p) opts="$src --amd-zen"; bdfs=1 ;;
    device)
        verbs="check list show borrow return reclaim reset available unavailable history test lend unlend vfs"
        local guard="--dry-run -y --yes"
        case $verb in
        check)
            opts="$src --proc-root --window-size --amd-zen --strict"
            bdfs=1
            ;;
        lend)
            opts="--node --name --force --sysfs-root --proc-root --state-dir --verify-timeout $guard $fab"
            bdfs=1
            ;;
        unlend)
            opts="--force --sysfs-root --proc-root --state-dir --verify-timeout $guard $fab"
            bdfs=1
            ;;
        vfs) opts="--count --sysfs-root --proc-root --state-dir --verify-timeout $guard"; bdfs=1 ;;
        list) opts="$fab" ;;
        show) opts="$fab"; fdids=1 ;;
        borrow) opts="--exclusive --lease --wait --hold --local-node $fab"; fdids=1 ;;
        return) opts="--lease-id $fab"; fdids=1 ;;
        reclaim) opts="--reason $guard $fab"; fdids=1 ;;
        reset | available | unavailable) opts="$guard $fab"; fdids=1 ;;
        history) opts="--since --limit $fab"; fdids=1 ;;
        test) opts="--local-node $fab"; fdids=1 ;;
        esac
        ;;
    fabric)
        verbs="start stop status"
        case $verb in
        start) opts="-n --nodes -c --config --timeout-ms $fab" ;;
        *) opts="$fab" ;;
        esac
        ;;
    topology | probe) opts="$fab --local-node -a --adapter" ;;
    segment) verbs="list"; opts="--node $fab" ;;
    exporter) opts="--listen --basic-auth --fabric-timeout $fab $src" ;;
    diag) opts="-V --clear --strict --state --config --sysfs-root --no-host --lendable --no-loopback --timeout $fab" ;;
    monitor) opts="-d --delay -n --iterations -C --no-color --once --node-timeout --pcie-interval $fab $src" ;;
    qualify) opts="-p --plan --junit --report --check $fab" ;;
    bench)
        verbs="pio-latency pio-bw dma-bw dma-latency intr-latency data-intr-latency device-cycle device-copy serve"
        case $verb in
        serve) opts="--once --idle-timeout --cpu -a --adapter --fabric --local-node" ;;
        pio-bw) opts="$bench_common --read" ;;
        dma-bw) opts="$bench_common --pull --vector" ;;
        dma-latency) opts="$bench_common --pull -m --mode" ;;
        device-cycle) opts="$bench_common --device" ;;
        device-copy) opts="$bench_common --device -m --mode" ;;
        *) opts="$bench_common" ;;
        esac
        ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts $global" -- "$cur"))
    elif [ -n "$verbs" ] && [ -z "$verb" ]; then
        COMPREPLY=($(compgen -W "$verbs" -- "$cur"))
    elif [ $bdfs -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(_dis_tool_bdfs)" -- "$cur"))
    elif [ $fdids -eq 1 ]; then
        COMPREPLY=($(compgen -W "$(_dis_tool_fdids)" -- "$cur"))
    fi
}
complete -F _dis_tool dis-tool

# ex: filetype=sh
