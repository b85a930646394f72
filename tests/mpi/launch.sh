# Sourced by the MPI tests with COGQAT and MPIEXEC as $1 and $2: sets `cogqat`, a scratch `dir` removed on exit,
# and `launch`, the mpiexec command line that runs ranks on this machine (as root too, more ranks than cores).
set -euo pipefail
cogqat=$1
mpiexec=$2
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
launch=("$mpiexec" --oversubscribe)
[ "$(id -u)" -eq 0 ] && launch+=(--allow-run-as-root)
# Open MPI in a container: the shared-memory transport between the ranks of one machine, no network probing.
export OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_plm=isolated OMPI_MCA_rmaps_base_oversubscribe=1
