"""A hiring model that is accurate and still penalises the word "women's": found by looking
inside, not by the accuracy.

``biased_resumes`` trains a small text classifier on generated resume lines whose labels are
past decisions, which mostly rejected resumes with a women's club. Its held-out accuracy is
high; its token attributions and a women's <-> men's swap show what it relies on.
``fair_resumes`` is the same data labelled by merit alone, for comparison.
"""

import os
from pathlib import Path

import netxray
from netxray import resumes
from netxray.analysis import analyze_text
from netxray.report import write_text_analysis
from netxray.report.text import top_tokens

out = Path(os.environ.get("NETXRAY_EXAMPLES_OUT", "netxray-examples"))
out.mkdir(parents=True, exist_ok=True)

for name in resumes.names():
    run = resumes.get(name).run(seed=0)  # .model, .tokenizer, .train/.test, .test_texts
    # Change only the gendered word, both ways, and count the decisions that flip.
    swaps = netxray.counterfactual(run.model, list(run.test_texts), {"women's": "men's"},
                                   tokenizer=run.tokenizer, class_names=resumes.CLASS_NAMES)
    # Which tokens are the evidence for each class, over the whole held-out set.
    text = analyze_text(run.model, run.test, target="label", n_steps=16, counterfactual=swaps,
                        title=f"{name}: what the model relies on")
    tops = top_tokens(text, k=5)
    print(f"{name}: accuracy {text.accuracy:.3f}; top evidence for reject: "
          f"{', '.join(tops['reject'])}")
    print(f"{'':>{len(name)}}  {swaps.summary()}")
    write_text_analysis(text, out / f"{name}.html")
