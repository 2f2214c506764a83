#!/bin/sh
# Launch this job with torchrun: one process per GPU of this node, DDP over NCCL (gloo on CPUs).
#   ./launch.sh                      every GPU of this machine
#   NPROC=4 ./launch.sh --fsdp       4 processes, parameters sharded with FSDP (models that do not fit one GPU)
#   NNODES=2 NODE_RANK=0 MASTER_ADDR=node0 ./launch.sh     on each node of a 2-node job (NODE_RANK 0, 1)
# Arguments go to train.py (--fsdp, --cpu, --threads N, --progress json). Relaunching resumes.
# Without a working torchrun (Debian's torch 1.13 crashes at start): python3 train.py --local N
set -e
cd "$(dirname "$0")"
if [ -z "$NPROC" ]; then NPROC=$(nvidia-smi -L 2>/dev/null | wc -l); [ "$NPROC" -gt 0 ] || NPROC=1; fi
exec "${TORCHRUN:-torchrun}" --nnodes "${NNODES:-1}" --node_rank "${NODE_RANK:-0}" --nproc_per_node "$NPROC" \
  --master_addr "${MASTER_ADDR:-127.0.0.1}" --master_port "${MASTER_PORT:-29500}" train.py "$@"
