"""The counter-examples: small seeded training runs that each break a network in one way.

Each preset in ``netxray.presets`` trains a small MLP on two moons in about a second; the
health check should name what went wrong (and find nothing wrong with ``healthy``).
"""

from netxray import presets
from netxray.health import diagnose

for name in presets.names():
    preset = presets.get(name)
    run = preset.run(seed=0)  # .model (trained, eval mode), .data (a Dataset), .history
    report = diagnose(run.model, run.data.tensors(), history=run.history)

    # The headline: the most severe finding, cut to its first sentence.
    if report.findings:
        top = report.findings[0]
        where = f" in {top.layer}" if top.layer else ""
        headline = f"{top.severity} {top.kind}{where}: {top.advice.split('. ')[0]}."
    else:
        headline = "no problems found."
    found = all(kind in report.kinds for kind in preset.expected)
    expected = ", ".join(preset.expected) or "nothing"
    print(f"{name:>10}  {headline}")
    print(f"{'':>10}  expected {expected}: {'found' if found else 'NOT found'}; "
          f"all findings: {', '.join(sorted(report.kinds)) or 'none'}")

# To see one in full (advice and a per-layer table):
#   print(diagnose(run.model, run.data.tensors(), history=run.history).summary())
# or from a shell:  netxray demo --preset dying_relu
