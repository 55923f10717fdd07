"""Question, option and caption templates: a finite, clinically worded vocabulary.

Each template set serves one kind of pair. It lists question wordings, each with a genuine
paraphrase (written into ``AI_question``), option wordings per answer key, each with a paraphrase
(``AI_option_A``/``AI_option_B``), and report-like caption templates per answer key (or per
``answer:finding`` for normal-versus-abnormal pairs). Slots such as ``{side}`` or ``{level}`` are
filled from the finding. Sides are the patient's sides; questions about sides say so, because
images follow the radiological convention (the patient's left is on the image right).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CONVENTION = "(radiological convention: the patient's left is on the image right)"
CONVENTION_AI = "(images are displayed in radiological convention, with the patient's left on the right of the image)"


@dataclass(frozen=True)
class TemplateSet:
    """Wordings for one kind of pair."""

    questions: tuple[tuple[str, str], ...]  # (question, paraphrase)
    options: tuple[dict[str, tuple[str, str]], ...]  # answer key -> (option, paraphrase), per variant
    captions: dict[str, tuple[str, ...]]  # answer key (or "answer:finding") -> caption templates


def _presence(questions, present, absent, captions_present, captions_absent) -> TemplateSet:
    options = tuple({"present": p, "absent": a} for p, a in zip(present, absent))
    return TemplateSet(tuple(questions), options,
                       {"present": tuple(captions_present), "absent": tuple(captions_absent)})


TEMPLATES: dict[str, TemplateSet] = {
    # --- chest radiograph --------------------------------------------------------------------
    "nodule.chest": _presence(
        [("Is there a pulmonary nodule on this chest radiograph?",
          "Does this chest X-ray show a focal lung nodule?"),
         ("What do the lung fields show?", "How do the lungs appear on this radiograph?"),
         ("Is a solitary pulmonary nodule present?", "Can a single rounded lung opacity be seen?")],
        [("A solitary pulmonary nodule", "A single rounded opacity in the lung"),
         ("Focal nodular opacity in the lung", "A localized round density within the lung field")],
        [("Clear lungs without a focal nodule", "Lung fields free of any focal opacity"),
         ("No pulmonary nodule", "Absence of a lung nodule")],
        ["PA chest radiograph showing a {size} mm nodule in the {side} {zone} zone.",
         "Chest X-ray: solitary pulmonary nodule in the {side} lung, {zone} zone."],
        ["PA chest radiograph with clear lungs and no focal nodule.",
         "Chest X-ray: no pulmonary nodule is seen."]),
    "laterality.chest_nodule": TemplateSet(
        ((f"In which lung is the nodule located {CONVENTION}?",
          f"Which lung contains the rounded opacity {CONVENTION_AI}?"),
         (f"On which side of the patient is the pulmonary nodule {CONVENTION}?",
          f"Which side of the chest holds the lung nodule {CONVENTION_AI}?")),
        ({"right": ("In the right lung", "Within the patient's right lung"),
          "left": ("In the left lung", "Within the patient's left lung")},
         {"right": ("Right {zone} zone", "The {zone} zone of the right lung"),
          "left": ("Left {zone} zone", "The {zone} zone of the left lung")}),
        {"right": ("Chest radiograph showing a nodule in the right {zone} zone.",
                   "PA chest X-ray: right lung nodule, {zone} zone."),
         "left": ("Chest radiograph showing a nodule in the left {zone} zone.",
                  "PA chest X-ray: left lung nodule, {zone} zone.")}),
    "laterality.chest_effusion": TemplateSet(
        ((f"On which side is the pleural effusion {CONVENTION}?",
          f"Which hemithorax contains the pleural fluid {CONVENTION_AI}?"),
         (f"Which costophrenic angle is blunted {CONVENTION}?",
          f"On which side is the costophrenic angle obscured by fluid {CONVENTION_AI}?")),
        ({"right": ("Right-sided pleural effusion", "Fluid in the right pleural space"),
          "left": ("Left-sided pleural effusion", "Fluid in the left pleural space")},
         {"right": ("The right side", "The patient's right hemithorax"),
          "left": ("The left side", "The patient's left hemithorax")}),
        {"right": ("Chest radiograph with a right pleural effusion blunting the costophrenic angle.",
                   "PA chest X-ray: right-sided pleural effusion."),
         "left": ("Chest radiograph with a left pleural effusion blunting the costophrenic angle.",
                  "PA chest X-ray: left-sided pleural effusion.")}),
    "zone.chest_nodule": TemplateSet(
        (("In which zone of the {side} lung is the nodule?", "Where in the {side} lung does the nodule lie?"),
         ("Is the pulmonary nodule in the upper or the lower zone?",
          "Does the lung nodule sit in the upper or in the lower part of the lung?")),
        ({"upper": ("Upper zone", "The upper part of the lung"),
          "lower": ("Lower zone", "The lower part of the lung")},
         {"upper": ("In the {side} upper zone", "High in the {side} lung"),
          "lower": ("In the {side} lower zone", "Low in the {side} lung, near the base")}),
        {"upper": ("Chest radiograph showing a nodule in the {side} upper zone.",
                   "PA chest X-ray: {side} upper zone pulmonary nodule."),
         "lower": ("Chest radiograph showing a nodule in the {side} lower zone.",
                   "PA chest X-ray: {side} lower zone pulmonary nodule.")}),
    "cardiomegaly.chest": _presence(
        [("Is the cardiac silhouette enlarged on this radiograph?",
          "Does the heart appear enlarged on this chest X-ray?"),
         ("What is the size of the cardiac silhouette?", "How large does the heart shadow appear?")],
        [("Cardiomegaly, with a cardiothoracic ratio above 0.5", "An enlarged heart occupying more than half of the chest width"),
         ("Enlarged cardiac silhouette", "The heart shadow is increased in size")],
        [("Normal heart size", "The heart is of normal size"),
         ("Normal cardiac silhouette", "The heart shadow is within normal limits")],
        ["PA chest radiograph showing cardiomegaly.",
         "Chest X-ray: enlarged cardiac silhouette."],
        ["PA chest radiograph with a normal cardiac silhouette.",
         "Chest X-ray: heart size within normal limits."]),
    "device.pacemaker": _presence(
        [("Is a cardiac pacemaker present?", "Can an implanted pacemaker be seen on this chest X-ray?"),
         ("What device, if any, is seen over the left upper chest?",
          "Is there any implanted device over the upper left chest?")],
        [("A pacemaker generator with a transvenous lead", "An implanted pulse generator and pacing wire"),
         ("Pacemaker present", "An implanted cardiac pacing device is visible")],
        [("No pacemaker", "There is no implanted pacing device"),
         ("No implanted cardiac device", "No cardiac device is visible")],
        ["Chest radiograph showing a left pectoral pacemaker with its lead in the right ventricle.",
         "PA chest X-ray with a cardiac pacemaker in place."],
        ["Chest radiograph without cardiac devices.", "PA chest X-ray: no pacemaker is seen."]),
    "device.endotracheal_tube": _presence(
        [("Is an endotracheal tube in place?", "Is the patient intubated on this chest radiograph?"),
         ("What is seen within the trachea?", "What does the tracheal air column contain?")],
        [("An endotracheal tube with its tip above the carina", "A breathing tube ending above the carina"),
         ("Endotracheal tube present", "The patient is intubated")],
        [("No endotracheal tube", "There is no breathing tube"),
         ("Clear trachea without a tube", "The airway contains no tube")],
        ["Chest radiograph with an endotracheal tube, tip above the carina.",
         "Portable chest X-ray: the patient is intubated."],
        ["Chest radiograph with no endotracheal tube.", "Chest X-ray: no tubes or lines in the trachea."]),
    "device.central_venous_catheter": _presence(
        [("Is a central venous catheter present?", "Can a central line be seen on this chest X-ray?"),
         ("What line, if any, projects over the right side of the mediastinum?",
          "Is there a catheter running along the right mediastinum?")],
        [("A right internal jugular central line ending in the superior vena cava",
          "A central venous line from the right neck with its tip in the SVC"),
         ("Central venous catheter present", "A central line is in place")],
        [("No central venous catheter", "There is no central line"),
         ("No line in the mediastinum", "No catheter projects over the mediastinum")],
        ["Chest radiograph with a right internal jugular line, tip in the superior vena cava.",
         "Chest X-ray: central venous catheter in place."],
        ["Chest radiograph without lines or catheters.", "Chest X-ray: no central venous catheter."]),
    "normality.chest": TemplateSet(
        (("Is this chest radiograph normal or abnormal?", "Does this chest X-ray show any abnormality?"),
         ("How should this chest radiograph be reported?", "What is the overall impression of this chest X-ray?")),
        ({"normal": ("Normal chest radiograph", "No abnormality in the chest"),
          "abnormal": ("Abnormal chest radiograph", "There is an abnormality in the chest")},
         {"normal": ("No acute cardiopulmonary abnormality", "The heart and lungs are normal"),
          "abnormal": ("An abnormal finding is present", "Something abnormal is visible")}),
        {"normal": ("Normal PA chest radiograph.", "Chest X-ray: no acute cardiopulmonary abnormality."),
         "abnormal:pulmonary_nodule": ("Chest radiograph: {side} {zone} zone pulmonary nodule.",),
         "abnormal:pleural_effusion": ("Chest radiograph: {side} pleural effusion.",),
         "abnormal:cardiomegaly": ("Chest radiograph: cardiomegaly.",)}),
    # --- head CT --------------------------------------------------------------------------------
    "hemorrhage.head": _presence(
        [("Is there an intracranial hemorrhage on this head CT?",
          "Does this non-contrast head CT show bleeding in the brain?"),
         ("What does the brain parenchyma show?", "How does the brain tissue appear on this CT?"),
         ("Is there a hyperdense lesion in the brain parenchyma?",
          "Can a bright area within the brain tissue be seen on this CT?")],
        [("Acute intraparenchymal hemorrhage", "A fresh bleed within the brain tissue"),
         ("Hyperdense hematoma with surrounding edema", "A bright blood collection with a dark rim of swelling")],
        [("No intracranial hemorrhage", "No bleeding within the skull"),
         ("Normal brain parenchyma without hemorrhage", "Unremarkable brain tissue with no bleed")],
        ["Non-contrast head CT: {size} mm hyperdense hemorrhage in the {side} {lobe} lobe.",
         "Axial CT of the head showing an acute {side} {lobe} intraparenchymal hematoma."],
        ["Non-contrast head CT without intracranial hemorrhage.",
         "Axial CT of the head: no acute intracranial abnormality."]),
    "laterality.head_hemorrhage": TemplateSet(
        ((f"In which cerebral hemisphere is the hemorrhage {CONVENTION}?",
          f"Which side of the brain contains the bleed {CONVENTION_AI}?"),
         (f"On which side is the {{lobe}} hematoma {CONVENTION}?",
          f"Which {{lobe}} lobe holds the blood collection {CONVENTION_AI}?")),
        ({"right": ("Right hemisphere", "The patient's right side of the brain"),
          "left": ("Left hemisphere", "The patient's left side of the brain")},
         {"right": ("Right {lobe} lobe", "The right {lobe} region"),
          "left": ("Left {lobe} lobe", "The left {lobe} region")}),
        {"right": ("Head CT: acute hemorrhage in the right {lobe} lobe.",
                   "Axial CT showing a right {lobe} intraparenchymal hematoma."),
         "left": ("Head CT: acute hemorrhage in the left {lobe} lobe.",
                  "Axial CT showing a left {lobe} intraparenchymal hematoma.")}),
    "calcification.head": _presence(
        [("Is there a focal parenchymal calcification?", "Does this head CT show a calcified focus in the brain?"),
         ("What is seen in the {side} {lobe} region?", "What does the {side} {lobe} area of the brain show?")],
        [("A punctate calcification", "A tiny calcified focus"),
         ("Focal calcification in the brain parenchyma", "A small dense calcified spot within the brain")],
        [("No calcification", "There is no calcified focus"),
         ("Normal parenchyma", "Unremarkable brain tissue")],
        ["Head CT: {size} mm calcification in the {side} {lobe} lobe.",
         "Axial non-contrast CT showing a punctate {side} {lobe} calcification."],
        ["Head CT: no parenchymal calcification.", "Axial non-contrast CT without focal calcification."]),
    "fracture.skull": _presence(
        [("Is there a skull fracture?", "Does this head CT show a break in the skull?"),
         ("What does the {side} calvarium show?", "How does the {side} side of the skull vault appear?")],
        [("A linear skull fracture with overlying scalp hematoma", "A straight break in the skull with swelling of the scalp above it"),
         ("Calvarial fracture", "A fracture of the skull vault")],
        [("Intact calvarium", "The skull vault is unbroken"),
         ("No skull fracture", "There is no break in the skull")],
        ["Head CT: linear fracture of the {side} calvarium with a scalp hematoma.",
         "Axial CT showing a {side} skull fracture."],
        ["Head CT: intact calvarium.", "Axial CT: no skull fracture."]),
    "normality.head": TemplateSet(
        (("Is this head CT normal or abnormal?", "Does this CT of the head show any abnormality?"),
         ("How should this non-contrast head CT be reported?", "What is the impression of this head CT?")),
        ({"normal": ("Normal head CT", "No abnormality in the brain"),
          "abnormal": ("Abnormal head CT", "There is an abnormality in the brain")},
         {"normal": ("No acute intracranial abnormality", "The brain appears normal"),
          "abnormal": ("A focal parenchymal abnormality is present", "There is a focal lesion in the brain")}),
        {"normal": ("Non-contrast head CT within normal limits.", "Head CT: no acute intracranial abnormality."),
         "abnormal:intraparenchymal_hemorrhage": ("Head CT: acute hemorrhage in the {side} {lobe} lobe.",),
         "abnormal:infarct": ("Head CT: hypodense infarct in the {side} {lobe} lobe.",)}),
    # --- angiogram -----------------------------------------------------------------------------
    "occlusion.angio": TemplateSet(
        (("Are the branches of the {artery} patent?", "Is flow preserved in all branches of the {artery}?"),
         ("Is there an occlusion in the {artery} territory?", "Does any branch of the {artery} show an abrupt cut-off?"),
         ("What does this angiogram of the {artery} show?", "What is seen on this angiographic study of the {artery}?")),
        ({"occluded": ("An abrupt cut-off of a branch, consistent with occlusion",
                       "A branch ends suddenly, in keeping with a blocked vessel"),
          "patent": ("All branches patent with normal filling", "Every branch fills normally")},
         {"occluded": ("Branch occlusion", "A blocked branch"),
          "patent": ("Patent arterial tree", "Open arteries throughout")}),
        {"occluded": ("Angiogram of the {artery} showing an abrupt branch occlusion with absent distal filling.",
                      "Digital subtraction angiography: occluded branch of the {artery}."),
         "patent": ("Angiogram of the {artery} with all branches patent.",
                    "Digital subtraction angiography: normal filling of the {artery} territory.")}),
    "aneurysm.angio": _presence(
        [("Is there an aneurysm on this angiogram?", "Does this angiographic image show an aneurysm?"),
         ("What abnormality of the {artery}, if any, is seen?", "Is any abnormality of the {artery} visible?")],
        [("A saccular aneurysm", "A berry-shaped outpouching of the artery"),
         ("Saccular outpouching arising from the vessel wall", "A rounded sac projecting from the arterial wall")],
        [("No aneurysm", "There is no aneurysmal dilatation"),
         ("Smooth vessel contours without aneurysm", "The arteries have regular walls with no outpouching")],
        ["Angiogram of the {artery} showing a {size} mm saccular aneurysm.",
         "Digital subtraction angiography: saccular aneurysm of the {artery}."],
        ["Angiogram of the {artery} without aneurysm.", "Digital subtraction angiography: no aneurysm."]),
    "device.stent": _presence(
        [("Is a stent present in the {artery}?", "Has a stent been placed in the {artery}?"),
         ("What is seen along the proximal {artery}?", "What lies along the proximal segment of the {artery}?")],
        [("A metallic mesh stent", "A deployed metal stent"),
         ("Stent in place", "A stent has been deployed")],
        [("No stent", "There is no stent"),
         ("Native vessel without a stent", "The vessel has no implanted stent")],
        ["Angiogram of the {artery} after stent placement.",
         "Digital subtraction angiography showing a stent in the {artery}."],
        ["Angiogram of the {artery} without a stent.", "Digital subtraction angiography: no stent seen."]),
    # --- skeletal radiographs ------------------------------------------------------------------
    "fracture.vertebra": _presence(
        [("Is there a vertebral compression fracture on this lateral {region} spine radiograph?",
          "Does this lateral {region} spine X-ray show a collapsed vertebra?"),
         ("Is there loss of vertebral body height?", "Has any vertebral body lost height?"),
         ("What is the condition of the {level} vertebral body?", "How does the {level} vertebra appear?")],
        [("Anterior wedge compression fracture", "The front of the vertebral body has collapsed"),
         ("Vertebral body height loss", "A vertebral body is reduced in height")],
        [("Preserved vertebral body heights", "All vertebral bodies keep their normal height"),
         ("No compression fracture", "There is no vertebral collapse")],
        ["Lateral {region} spine radiograph: wedge compression fracture of {level}.",
         "Lateral X-ray of the {region} spine showing {level} anterior height loss of about {loss}%."],
        ["Lateral {region} spine radiograph with preserved vertebral heights.",
         "Lateral X-ray of the {region} spine: no compression fracture."]),
    "zone.spine_fracture": TemplateSet(
        (("At which level is the compression fracture?", "Which vertebra has collapsed?"),
         ("Is the compression fracture in the upper or the lower {region} spine?",
          "Is the collapsed vertebra in the upper or lower part of the {region} spine?")),
        ({"upper": ("At an upper {region} level ({upper_levels})", "High in the {region} spine ({upper_levels})"),
          "lower": ("At a lower {region} level ({lower_levels})", "Low in the {region} spine ({lower_levels})")},
         {"upper": ("Upper {region} spine", "The upper part of the {region} spine"),
          "lower": ("Lower {region} spine", "The lower part of the {region} spine")}),
        {"upper": ("Lateral {region} spine radiograph: compression fracture of {level}.",),
         "lower": ("Lateral {region} spine radiograph: compression fracture of {level}.",)}),
    "device.pedicle_screws": _presence(
        [("Is spinal fixation hardware present?", "Has the spine been instrumented?"),
         ("Are pedicle screws present on this lateral {region} spine radiograph?",
          "Does this lateral {region} spine X-ray show pedicle screws?")],
        [("Pedicle screws with a connecting rod", "Screws through the pedicles joined by a rod"),
         ("Posterior spinal instrumentation", "Posterior fixation hardware")],
        [("No spinal hardware", "There is no instrumentation"),
         ("Native spine without fixation", "The spine has not been instrumented")],
        ["Lateral {region} spine radiograph after posterior fixation at {level}.",
         "Lateral X-ray of the {region} spine with pedicle screws and rods at {level}."],
        ["Lateral {region} spine radiograph without hardware.",
         "Lateral X-ray of the {region} spine: no instrumentation."]),
    "fracture.limb": _presence(
        [("Is there a fracture of the {bone}?", "Does this {limb} radiograph show a broken {bone}?"),
         ("What does the shaft of the {bone} show?", "How does the {bone} shaft appear?"),
         ("Is the cortex of the {bone} intact?", "Is the {bone} cortex continuous?")],
        [("A fracture line through the {bone} shaft", "A lucent break across the {bone}"),
         ("Fracture of the {bone}", "The {bone} is broken")],
        [("Intact {bone} without fracture", "The {bone} is unbroken"),
         ("Continuous cortex, no fracture", "The cortex is uninterrupted")],
        ["{limb_title} radiograph showing a fracture of the {third} third of the {bone}.",
         "AP {limb} X-ray: {third} {bone} shaft fracture."],
        ["{limb_title} radiograph without fracture.", "AP {limb} X-ray: intact bones."]),
    "zone.limb_fracture": TemplateSet(
        (("Where along the {bone} is the fracture (proximal is at the top of the image)?",
          "In which part of the {bone} shaft does the break lie (the top of the image is proximal)?"),
         ("Is the {bone} fracture proximal or distal?", "Does the break involve the near or the far end of the {bone}?")),
        ({"proximal": ("Proximal third of the {bone}", "The part of the {bone} nearer the body"),
          "distal": ("Distal third of the {bone}", "The part of the {bone} farther from the body")},
         {"proximal": ("Proximal shaft", "The upper shaft"),
          "distal": ("Distal shaft", "The lower shaft")}),
        {"proximal": ("{limb_title} radiograph: fracture of the proximal third of the {bone}.",),
         "distal": ("{limb_title} radiograph: fracture of the distal third of the {bone}.",)}),
    "device.cortical_screws": _presence(
        [("Is orthopedic fixation hardware present?", "Has the bone been fixed with hardware?"),
         ("Are there screws across the {bone}?", "Do screws traverse the {bone}?")],
        [("Cortical screws across the {bone}", "Screws fixing the {bone}"),
         ("Screw fixation", "Hardware made of screws")],
        [("No orthopedic hardware", "There is no fixation material"),
         ("Native bone without screws", "The bone has no screws")],
        ["{limb_title} radiograph with cortical screws across the {bone}.",
         "AP {limb} X-ray after screw fixation of the {bone}."],
        ["{limb_title} radiograph without hardware.", "AP {limb} X-ray: no orthopedic hardware."]),
    # --- abdominal CT --------------------------------------------------------------------------
    "mass.liver": _presence(
        [("Is there a focal liver lesion?", "Does this abdominal CT show a mass in the liver?"),
         ("What does the liver show?", "How does the hepatic parenchyma appear?")],
        [("A hypodense hepatic mass", "A low-attenuation lesion in the liver"),
         ("Focal liver lesion", "A localized abnormality in the liver")],
        [("Homogeneous liver without focal lesion", "Uniform liver tissue with no mass"),
         ("No liver lesion", "There is no hepatic mass")],
        ["Contrast-enhanced CT of the abdomen: {size} mm hypodense lesion in the right lobe of the liver.",
         "Axial CT showing a hypodense hepatic mass."],
        ["Contrast-enhanced CT of the abdomen: normal liver.", "Axial CT: no focal liver lesion."]),
    "calcification.gallstone": _presence(
        [("Is there a calcified gallstone?", "Does the gallbladder contain a dense stone?"),
         ("What does the gallbladder contain?", "What is seen within the gallbladder?")],
        [("A calcified gallstone", "A dense stone in the gallbladder"),
         ("Cholelithiasis", "Gallbladder stone disease")],
        [("No gallstone", "There is no stone in the gallbladder"),
         ("Fluid-filled gallbladder without stones", "Only bile, with no stones")],
        ["Abdominal CT: {size} mm calcified gallstone.", "Axial CT showing cholelithiasis."],
        ["Abdominal CT: gallbladder without stones.", "Axial CT: no cholelithiasis."]),
    "calcification.renal": _presence(
        [("Is there a renal calculus?", "Does this CT show a kidney stone?"),
         ("What does the {side} kidney show?", "How does the {side} kidney appear?")],
        [("A dense calculus in the {side} kidney", "A stone in the {side} kidney"),
         ("Nephrolithiasis", "Kidney stone disease")],
        [("No renal calculus", "There is no kidney stone"),
         ("Normal kidney without stones", "The kidney contains no stones")],
        ["Abdominal CT: {size} mm calculus in the {side} kidney.", "Axial CT showing {side} nephrolithiasis."],
        ["Abdominal CT: no renal calculi.", "Axial CT: kidneys without stones."]),
    "laterality.renal_calculus": TemplateSet(
        ((f"Which kidney contains the calculus {CONVENTION}?",
          f"In which kidney is the stone {CONVENTION_AI}?"),
         (f"On which side is the renal stone {CONVENTION}?",
          f"Which side holds the kidney stone {CONVENTION_AI}?")),
        ({"right": ("Right kidney", "The patient's right kidney"),
          "left": ("Left kidney", "The patient's left kidney")},
         {"right": ("Right-sided nephrolithiasis", "A stone on the right side"),
          "left": ("Left-sided nephrolithiasis", "A stone on the left side")}),
        {"right": ("Abdominal CT: calculus in the right kidney.",),
         "left": ("Abdominal CT: calculus in the left kidney.",)}),
    "normality.abdomen": TemplateSet(
        (("Is this abdominal CT normal or abnormal?", "Does this CT of the abdomen show any abnormality?"),
         ("How should this abdominal CT be reported?", "What is the impression of this abdominal CT?")),
        ({"normal": ("Normal abdominal CT", "No abnormality in the abdomen"),
          "abnormal": ("Abnormal abdominal CT", "There is an abnormality in the abdomen")},
         {"normal": ("No focal abnormality", "The solid organs appear normal"),
          "abnormal": ("A focal abnormality is present", "There is a focal lesion")}),
        {"normal": ("Abdominal CT within normal limits.", "Axial CT of the abdomen: no focal abnormality."),
         "abnormal:liver_mass": ("Abdominal CT: hypodense liver lesion.",),
         "abnormal:gallstone": ("Abdominal CT: calcified gallstone.",),
         "abnormal:renal_calculus": ("Abdominal CT: calculus in the {side} kidney.",)}),
}


@dataclass(frozen=True)
class Wording:
    question: str
    ai_question: str
    options: dict[str, tuple[str, str]]  # answer key -> (option, paraphrase)
    question_index: int
    option_index: int


def _fill(template: str, slots: dict[str, str]) -> str:
    return template.format(**slots)


def word_question(rng: np.random.Generator, key: str, slots: dict[str, str]) -> Wording:
    """Pick a question wording and an option wording for template set ``key`` and fill the slots."""
    templates = TEMPLATES[key]
    qi = int(rng.integers(len(templates.questions)))
    oi = int(rng.integers(len(templates.options)))
    question, ai_question = templates.questions[qi]
    options = {answer: (_fill(text, slots), _fill(ai, slots))
               for answer, (text, ai) in templates.options[oi].items()}
    return Wording(_fill(question, slots), _fill(ai_question, slots), options, qi, oi)


def caption(rng: np.random.Generator, key: str, answer: str, finding: str, slots: dict[str, str]) -> str:
    """A short report-like caption for one image."""
    captions = TEMPLATES[key].captions
    pool = captions.get(f"{answer}:{finding}") or captions[answer]
    return _fill(pool[int(rng.integers(len(pool)))], slots)


def vocabulary() -> list[str]:
    """Every template string (unfilled), e.g. to build a word-level tokenizer's vocabulary."""
    out: list[str] = []
    for templates in TEMPLATES.values():
        for q, ai in templates.questions:
            out += [q, ai]
        for variant in templates.options:
            for text, ai in variant.values():
                out += [text, ai]
        for pool in templates.captions.values():
            out += list(pool)
    return out
