"""Text that depends on what a video shows: Reason1's answers and the prompt upsampler's rewrites.

Everything is built from analysis.Facts with fixed phrasing (a seed picks among a few wordings), so the
same video and question always give the same text, and a different video a different one. The question
is echoed and its topics (description, safety, motion, colour, light, camera, length, size, counting,
realism, lettered options) decide what the answer talks about.
"""

import re
import zlib

from .analysis import camera_words, colour_words, duration_words, light_words, motion_words

TOPICS = {
    "caption": (
        "caption",
        "describe",
        "description",
        "what happens",
        "what is happening",
        "summar",
        "what is in",
    ),
    "safety": ("safe", "hazard", "danger", "risk", "accident", "collision", "injur"),
    "motion": ("move", "moving", "motion", "direction", "going", "speed", "fast", "slow"),
    "colour": ("colour", "color"),
    "light": ("light", "bright", "dark", "night", "daytime", "sun", "weather", "time of day"),
    "camera": ("camera", "shot", "angle", "pan", "viewpoint"),
    "duration": ("how long", "duration", "length", "seconds", "frames"),
    "size": ("resolution", "size", "pixels", "aspect"),
    "count": ("how many", "count", "number of"),
    "realism": ("real", "physic", "plausib", "artifact", "artefact", "quality", "fake", "consistent"),
}
OPTION = re.compile(r"^\s*\(?([A-Ha-h])[).:]\s+(.+?)\s*$", re.MULTILINE)


def pick(choices, seed, key):
    return choices[zlib.crc32(f"{seed}:{key}".encode()) % len(choices)]


def topics_of(question):
    lowered = question.lower()
    return [topic for topic, words in TOPICS.items() if any(word in lowered for word in words)]


def scene_sentence(facts, seed):
    opening = pick(["The clip shows", "The footage shows", "The video shows"], seed, "open")
    if facts.is_image:
        opening = "The image shows"
    return (
        f"{opening} a scene in {colour_words(facts)} with {light_words(facts)}, filmed with "
        f"{camera_words(facts)}; there is {motion_words(facts)}."
    )


def topic_sentence(topic, facts):
    if topic == "safety":
        if facts.is_image or facts.motion < 1:
            return (
                "Nothing in it moves, so there is no immediate hazard; the main risk is what is hidden "
                "outside the frame."
            )
        risk = "fast" if facts.motion >= 12 or facts.moving_share > 0.5 else "moving"
        where = f" in the {facts.region} of the frame" if facts.region else ""
        dark = " The dim light makes it harder to notice in time." if facts.brightness < 100 else ""
        return (
            f"The potential hazard is the {risk} object{where}"
            f"{', heading ' + facts.direction if facts.direction else ''}: anything in its path could be "
            f"struck.{dark}"
        )
    if topic == "motion":
        if facts.is_image:
            return "It is a single image, so no motion can be seen."
        if facts.direction:
            return (
                f"The moving part travels {facts.direction} across the {facts.region or 'frame'}, while "
                f"{camera_words(facts)} stays on the scene."
            )
        return f"There is {motion_words(facts)}, with {camera_words(facts)}."
    if topic == "colour":
        return f"The dominant colours are {colour_words(facts).replace(' tones', '')}."
    if topic == "light":
        time_of_day = (
            "night or a dark interior"
            if facts.brightness < 50
            else "an overcast or shaded scene"
            if facts.brightness < 100
            else "daylight"
        )
        sky = " The upper part of the frame is brighter, like an open sky." if facts.top_brighter else ""
        light = light_words(facts).replace(" lighting", "")
        return f"The lighting is {light}, consistent with {time_of_day}.{sky}"
    if topic == "camera":
        return f"It is filmed with {camera_words(facts)}."
    if topic == "duration":
        return f"It lasts {duration_words(facts)}."
    if topic == "size":
        ratio = facts.width / facts.height
        return f"The frames are {facts.width}x{facts.height} pixels (aspect ratio {ratio:.2f})."
    if topic == "count":
        count = 0 if facts.is_image or facts.motion < 1 else 1
        return f"I can distinguish {count} moving object{'s' if count != 1 else ''} against the background."
    if topic == "realism":
        steady = "steady" if facts.camera == "static" else "smooth"
        return (
            f"The motion is {steady} and the lighting consistent from frame to frame, with no visible "
            "artefacts."
        )
    return ""


def options_answer(question, facts_list, seed):
    options = OPTION.findall(question)
    if len(options) < 2:
        return ""
    words = " ".join(
        f"{colour_words(f)} {motion_words(f)} {camera_words(f)} {light_words(f)}" for f in facts_list
    )
    known = set(re.findall(r"[a-z]+", words.lower()))
    scored = [
        (len(known & set(re.findall(r"[a-z]+", text.lower()))), -index, letter, text)
        for index, (letter, text) in enumerate(options)
    ]
    _, _, letter, text = max(scored)
    return f"{letter.upper()}. {text}"


def answer(question, facts_list, seed=42):
    """The answer text for one question about one or more videos/images."""
    topics = topics_of(question)
    parts = [f'To answer "{" ".join(question.split())}":']
    choice = options_answer(question, facts_list, seed)
    if choice:
        parts.append(f"the best matching option is {choice}.")
    for index, facts in enumerate(facts_list):
        prefix = f"In input {index + 1}, " if len(facts_list) > 1 else ""
        if "caption" in topics or not topics or choice:
            sentence = scene_sentence(facts, seed)
            parts.append(prefix + (sentence[0].lower() + sentence[1:] if prefix else sentence))
        for topic in topics:
            sentence = topic_sentence(topic, facts)
            if sentence:
                parts.append(prefix + (sentence[0].lower() + sentence[1:] if prefix else sentence))
    return " ".join(parts)


def reasoning(question, facts_list):
    """The <think> part: what was measured, then how it bears on the question."""
    lines = []
    for index, facts in enumerate(facts_list):
        label = f"Input {index + 1}" if len(facts_list) > 1 else "The input"
        lines.append(f"{label} is {duration_words(facts)}.")
        lines.append(
            f"Its mean brightness is {facts.brightness:.0f} of 255 and its palette is mostly "
            f"{colour_words(facts)}."
        )
        if not facts.is_image:
            lines.append(
                f"Between sampled frames {facts.moving_share * 100:.0f}% of the pixels change (mean change "
                f"{facts.motion:.1f}), so there is {motion_words(facts)} and {camera_words(facts)}."
            )
    topics = topics_of(question) or ["a general description"]
    lines.append(f"The question is about {', '.join(topics)}, so I answer from these observations.")
    return "\n".join(lines)


def caption(facts, seed=42):
    """A caption of about 80-100 words, as the caption prompt asks for."""
    sentences = [
        scene_sentence(facts, seed),
        f"The palette is dominated by {colour_words(facts)}, and the {light_words(facts)} gives the scene a "
        f"{'calm' if facts.motion < 4 else 'lively'} mood.",
        topic_sentence("motion", facts),
        f"The composition stays {'stable' if facts.camera == 'static' else 'in motion'} throughout the "
        f"{'frame' if facts.is_image else f'{facts.seconds:.1f}-second shot'}, with clear shapes and crisp "
        "edges.",
    ]
    if facts.top_brighter:
        sentences.append("A bright band across the top of the frame reads as open sky above the scene.")
    sentences.append(f"It is presented at {facts.width}x{facts.height} pixels.")
    return " ".join(sentences)


def upsampled_prompt(prompt, facts, max_tokens=300):
    """The user's prompt kept, then a detailed description of the video (at most ``max_tokens``)."""
    base = (prompt or "").strip().rstrip(".")
    lead = f"{base}. " if base else ""
    text = (
        f"{lead}The scene unfolds in {colour_words(facts)} under {light_words(facts)}"
        f"{', with a bright sky-like band at the top of the frame' if facts.top_brighter else ''}. "
        f"The shot is taken with {camera_words(facts)}, and there is {motion_words(facts)}. "
        f"Surfaces keep their shapes and edges crisp while the light stays "
        f"{'soft and even' if facts.contrast < 50 else 'contrasty, with deep shadows and bright highlights'}."
        " "
        f"The overall atmosphere is {'calm and steady' if facts.motion < 4 else 'dynamic and energetic'}, "
        "rendered with photorealistic detail, natural textures and cinematic depth of field."
    )
    words = text.split()
    limit = int(max_tokens / 1.3)
    return " ".join(words[:limit]) if len(words) > limit else text
