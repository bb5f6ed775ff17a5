"""What benchmark scripts print beside every absolute figure: the CPU they ran on."""

import re
import subprocess


def cpu_description() -> str:
    """The CPU's model name (lscpu) and its vector extensions, e.g. 'AMD EPYC (AVX2, AVX-512)'.

    Machines of the same kind differ (an AVX2-only CPU can run the same job at half the speed), so a timing
    means little without this.
    """
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        text = ""
    model = re.search(r"^Model name:\s*(.+)$", text, re.MULTILINE)
    flags = set(re.search(r"^Flags:\s*(.+)$", text, re.MULTILINE).group(1).split()) if "Flags:" in text else set()
    extensions = [name for flag, name in (("avx2", "AVX2"), ("avx512f", "AVX-512"), ("amx_tile", "AMX")) if flag in flags]
    return f"{model.group(1).strip() if model else 'unknown CPU'} ({', '.join(extensions) or 'no AVX2'})"
