import subprocess
import sys

import pytest


@pytest.mark.packaging
def test_import_sigbench_loads_no_framework_and_no_pandas():
    code = (
        "import sys, sigbench, sigbench.cli, sigbench.core.registry, sigbench.core.interface\n"
        "sigbench.core.registry.installed_names()\n"
        "heavy = sorted({'torch', 'jax', 'pandas', 'matplotlib', 'scipy'} & set(sys.modules))\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


@pytest.mark.packaging
def test_help_and_version_stay_light():
    code = (
        "import sys\nfrom sigbench.cli import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('heavy:' + ','.join(sorted({'torch', 'jax', 'pandas'} & set(sys.modules))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "heavy:"
    assert out.stdout.startswith("sigbench ")
