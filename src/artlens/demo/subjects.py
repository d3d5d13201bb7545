"""Subject layouts: where the colour regions of a landscape, a portrait or a still life go, with the
picture's title and the subject's part of its description."""

from __future__ import annotations

import numpy as np
from PIL import Image

from artlens.demo.canvas import (
    F32,
    Scene,
    below,
    choice,
    draw_ellipse,
    draw_rect,
    ellipse,
    noise,
    paint,
    rect,
    uv,
    window,
)
from artlens.demo.palettes import colour_word, contrast_pick, lum, mix


def article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


_TOWNS = ("Vellmoor", "Saint-Aubrac", "Kessendorf", "Marenne", "Ostavik", "Lorvan", "Castelbrun",
          "Hollin", "Brenmouth", "Aldsey")


def _landscape(rng: np.random.Generator, cols: dict[str, np.ndarray], S: int) -> Scene:
    u, v = uv(S)
    h = float(rng.uniform(0.40, 0.60))
    time = choice(rng, ("morning", "noon", "evening", "dusk", "dawn", "winter", "summer", "autumn"))
    low_sun = time in ("evening", "dusk", "dawn", "morning")
    water = rng.random() < 0.45
    mountains = rng.random() < 0.5
    has_sun = rng.random() < 0.7
    trees = (not water) and rng.random() < 0.55

    sky_top = mix(cols["sky"], cols["dark"], 0.35) if time == "dusk" else cols["sky"]
    glow = mix(cols["light"], cols["accent"], 0.35 if low_sun else 0.05)
    t = np.clip(v / F32(h), 0, 1) ** 1.4
    img = np.broadcast_to(sky_top + (glow - sky_top) * t[..., None], (S, S, 3)).astype(F32)

    # clouds: soft horizontal streaks
    if rng.random() < 0.6:
        for _ in range(int(rng.integers(2, 5))):
            cx, cy = rng.uniform(0.05, 0.95), rng.uniform(0.06, h * 0.7)
            a = ellipse(u, v, cx, cy, rng.uniform(0.12, 0.25), rng.uniform(0.025, 0.05), S)
            paint(img, a * 0.55, mix(cols["light"], sky_top, 0.15))

    focal = []
    sun_x, sun_y, sun_r = 0.5, h * 0.5, 0.0
    if has_sun:
        sun_r = float(rng.uniform(0.05, 0.09))
        sun_x = float(rng.uniform(0.18, 0.82))
        sun_y = float(h - rng.uniform(0.08, 0.16)) if low_sun else float(rng.uniform(0.1, 0.22))
        d = np.sqrt((u - F32(sun_x)) ** 2 + (v - F32(sun_y)) ** 2)
        paint(img, np.exp(-np.maximum(d - sun_r, 0) * 9.0).astype(F32) * 0.45, glow)
        paint(img, ellipse(u, v, sun_x, sun_y, sun_r, sun_r, S),
               mix(cols["accent"], cols["light"], 0.15 if low_sun else 0.7))
        focal.append((sun_x, sun_y, sun_r * 2.5))

    if mountains:
        ph = rng.uniform(0, 2 * np.pi, 3)
        ridge = (h - 0.04 - rng.uniform(0.08, 0.18) * (
            0.55 * np.abs(np.sin(u * 5.0 + ph[0])) + 0.3 * np.abs(np.sin(u * 11.0 + ph[1]))
            + 0.15 * np.abs(np.sin(u * 23.0 + ph[2])))).astype(F32)
        mcol = mix(mix(cols["mid"], cols["dark"], 0.25), sky_top, 0.35)
        a = below(v, ridge, S)
        shade = (1.0 - 0.25 * np.clip((v - ridge) / 0.12, 0, 1))[..., None]
        paint(img, a, mcol * shade)

    if water:
        wcol = mix(mix(cols["sky"], cols["dark"], 0.3), cols["mid"], 0.2)
        paint(img, below(v, F32(h), S), wcol)
        streak = noise(rng, S, 6)
        streak = np.asarray(Image.fromarray(streak).resize((S, S // 8 + 1)).resize(
            (S, S), Image.BILINEAR), dtype=F32)
        wm = below(v, F32(h), S)
        img *= (1.0 + (streak[..., None] - 0.5) * 0.25 * wm[..., None])
        if has_sun:
            refl = np.exp(-((u - F32(sun_x)) / F32(sun_r * 0.9)) ** 2) * wm * (streak > 0.45)
            paint(img, refl.astype(F32) * 0.6, mix(cols["accent"], cols["light"], 0.4))
        shore = (h + rng.uniform(0.12, 0.22) + 0.03 * np.sin(u * rng.uniform(3, 7) + rng.uniform(0, 6))).astype(F32)
    else:
        shore = (h + 0.025 * np.sin(u * rng.uniform(3, 6) + rng.uniform(0, 6))).astype(F32)

    # ground in two bands: far fields and a darker foreground hill
    gcol = mix(cols["ground"], cols["light"], 0.6) if time == "winter" else cols["ground"]  # snow
    tg = np.clip((v - shore) / F32(1.0 - h), 0, 1)
    paint(img, below(v, shore, S), gcol * (1.0 - 0.25 * tg)[..., None])
    near = (shore + rng.uniform(0.12, 0.22) + 0.05 * np.sin(u * rng.uniform(2, 5) + rng.uniform(0, 6))).astype(F32)
    paint(img, below(v, near, S), mix(gcol, cols["dark"], 0.3))

    if trees:
        for _ in range(int(rng.integers(1, 5))):
            tx = float(rng.uniform(0.08, 0.92))
            base = float(shore[0, min(S - 1, int(tx * S))] + rng.uniform(0.0, 0.08))
            th = float(rng.uniform(0.1, 0.2))
            paint(img, rect(u, v, tx - 0.008, base - th * 0.6, tx + 0.008, base, S), cols["dark"])
            paint(img, ellipse(u, v, tx, base - th * 0.7, th * 0.33, th * 0.45, S),
                   mix(gcol, cols["dark"], 0.55))

    img *= (0.94 + 0.12 * noise(rng, S, 8))[..., None]
    np.clip(img, 0, 1, out=img)
    if not focal:
        focal.append((float(rng.uniform(0.2, 0.8)), h, 0.15))

    # words
    if water:
        place = choice(rng, ("Harbour", "Bay", "Lake", "Coast", "River", "Estuary", "Lagoon"))
    elif mountains:
        place = choice(rng, ("Mountains", "Peaks", "Valley", "Pass", "Ridge"))
    else:
        place = choice(rng, ("Hills", "Meadow", "Fields", "Plain", "Orchard", "Countryside"))
    Time = time.capitalize()
    adj = choice(rng, ("Quiet", "Distant", "Silent", "Wide", "Late", "Lonely", "Golden", "Still",
                        "Blue", "Windy", "Old", "Bright", "Empty", "Far"))
    when = {"morning": "in the morning", "evening": "in the evening", "noon": "at noon", "dusk": "at dusk",
            "dawn": "at dawn"}.get(time, f"in {time}")
    title = choice(rng, (
        f"{Time} {place}", f"{place} {when.replace(time, Time)}",
        f"View of the {place}", f"The {adj} {place}", f"{place} near {choice(rng, _TOWNS)}",
        f"{Time} over the {place}",
    ))
    bits = [f"the {place.lower()}" if place.endswith("s") or place == "Countryside" else f"{article(place)} {place.lower()}"]
    bits.append(when)
    extra = []
    if has_sun:
        extra.append("a low sun on the horizon" if low_sun else "a bright sun high in the sky")
    if mountains:
        extra.append("distant mountains")
    if water:
        extra.append("still water")
    if trees:
        extra.append("a few trees")
    if time == "winter":
        extra.append("snow on the ground")
    phrase = "A landscape of " + " ".join(bits) + " under a wide sky"
    if extra:
        phrase += ", with " + (", ".join(extra[:-1]) + " and " + extra[-1] if len(extra) > 1 else extra[0])
    return Scene(img, focal, phrase, title, cols)


_SITTERS = (
    # (noun, long hair, old, article)
    ("young woman", True, False, "a"),
    ("young man", False, False, "a"),
    ("old man", False, True, "an"),
    ("old woman", True, True, "an"),
    ("girl", True, False, "a"),
    ("boy", False, False, "a"),
)


_PROFESSIONS = ("Sailor", "Seamstress", "Violinist", "Botanist", "Ferryman", "Schoolteacher",
                "Clockmaker", "Dancer", "Poet", "Fisherman", "Actress", "Gardener", "Cellist",
                "Baker", "Harbour Master", "Widow", "Astronomer", "Singer", "Lacemaker", "Pilot")


_NAMES = ("Madame Lenoir", "Mr. H.", "Anna K.", "the Artist's Mother", "Doctor Vey", "Marguerite",
          "the Painter Rask", "a Friend", "Signora Belli", "Jonas", "Elena", "Monsieur Dufay",
          "the Artist's Son", "Lotte", "Professor Imre", "Miss Hartley", "Tomasz", "Aunt Vera")


def _portrait(rng: np.random.Generator, cols: dict[str, np.ndarray], S: int) -> Scene:
    u, v = uv(S)
    noun, long_hair, old, art = choice(rng, _SITTERS)
    hat = rng.random() < 0.2
    skin = mix(mix(cols["light"], cols["ground"], 0.3), cols["accent"], 0.08)
    bg = cols[contrast_pick(rng, cols, skin, ("sky", "mid", "dark", "ground"))]
    vign = np.sqrt((u - 0.5) ** 2 + (v - 0.45) ** 2)  # background: soft vignette
    img = np.broadcast_to(bg, (S, S, 3)) * (1.08 - 0.45 * vign)[..., None]
    img = (img * (0.93 + 0.14 * noise(rng, S, 5))[..., None]).astype(F32)

    cx = float(0.5 + rng.normal(0, 0.025))
    cy = float(0.40 + rng.normal(0, 0.015))
    rx = float(rng.uniform(0.13, 0.16))
    ry = float(rx * rng.uniform(1.25, 1.4))
    hair = mix(cols["light"], cols["mid"], 0.25) if old else mix(cols["dark"], cols["ground"], 0.2)
    cloth_role = contrast_pick(rng, cols, bg, ("accent", "dark", "mid", "sky"), 0.15)
    cloth = cols[cloth_role]

    if long_hair:  # hair falling behind the head, down to the shoulders
        draw_ellipse(img, cx, cy + 0.08, rx * 1.4, ry * 1.25, hair * 0.9)
    torso_top = cy + ry + 0.06
    trx = float(rng.uniform(0.36, 0.44))
    folds = rng.random() < 0.5

    sl, uu, vv = window(S, cx - trx, torso_top, cx + trx, 1.0)
    fold = (0.9 + 0.1 * np.sin((uu - F32(cx)) * 40.0)) if folds else F32(1.0)
    side = 1.0 - 0.35 * np.clip((uu - F32(cx)) * 2.5, 0, 1)  # lit from the left
    paint(img[sl], ellipse(uu, vv, cx, 1.08, trx, 1.08 - torso_top, S), cloth * (fold * side)[..., None])
    draw_rect(img, cx - 0.05, cy + ry * 0.6, cx + 0.05, torso_top + 0.03, skin * 0.8)  # neck
    draw_ellipse(img, cx, torso_top + 0.015, 0.09, 0.035, mix(cloth, cols["light"], 0.45), 0.8)
    draw_ellipse(img, cx, cy, rx, ry, skin, shade=0.35)
    # hair cap over the top of the head, down to the hairline
    sl, uu, vv = window(S, cx - rx * 1.1, cy - ry * 1.2, cx + rx * 1.1, cy)
    cap = ellipse(uu, vv, cx, cy - ry * 0.2, rx * 1.08, ry * 0.92, S) * below(-vv, F32(-(cy - ry * 0.35)), S)
    paint(img[sl], cap, hair)
    ey = cy - ry * 0.05  # face: eyes, nose shadow, mouth
    for sx in (-1, 1):
        draw_ellipse(img, cx + sx * rx * 0.38, ey, rx * 0.16, ry * 0.06, cols["dark"])
    draw_ellipse(img, cx, cy + ry * 0.18, rx * 0.08, ry * 0.15, skin * 0.7, 0.35)
    draw_ellipse(img, cx, cy + ry * 0.5, rx * 0.3, ry * 0.06, mix(cols["accent"], cols["dark"], 0.35))
    if hat:
        hcol = mix(cols["dark"], cloth, 0.3)
        draw_ellipse(img, cx, cy - ry * 0.72, rx * 1.7, ry * 0.18, hcol)
        draw_rect(img, cx - rx * 0.85, cy - ry * 1.45, cx + rx * 0.85, cy - ry * 0.72, hcol)
        draw_rect(img, cx - rx * 0.85, cy - ry * 0.9, cx + rx * 0.85, cy - ry * 0.78, cols["accent"])
    np.clip(img, 0, 1, out=img)

    cword = colour_word(cloth)
    who = noun.split()[-1]
    Who = {"man": "Man", "boy": "Boy", "woman": "Woman", "girl": "Girl"}[who]
    Noun = noun.title()
    options = [f"Portrait of {art} {Noun}", f"Portrait of {art} {Noun}", f"Head of {art} {Noun}",
               f"{Who} in {cword.title()}", f"Portrait of {choice(rng, _NAMES)}",
               f"Study of {art} {Noun}", "Self-Portrait" if who in ("man", "woman") else f"{Who} at a Window"]
    if who in ("man", "woman"):
        options += [f"The {choice(rng, _PROFESSIONS)}", f"The {choice(rng, _PROFESSIONS)}"]
    if hat:
        options += [f"{Who} with a Hat"] * 3
    title = choice(rng, options)
    phrase = f"A head-and-shoulders portrait of {art} {noun}"
    phrase += " wearing a hat" if hat else (" with long hair" if long_hair else "")
    phrase += f", a centred figure in {cword} clothes against a plain background"
    return Scene(img, [(cx, cy, max(rx, ry) * 1.2), (cx, 0.95, 0.2)], phrase, title, cols)


_FRUITS = (
    # (name plural, shape): shape "round", "pear", "oval", "small"
    ("Pears", "pear"), ("Apples", "round"), ("Oranges", "round"), ("Lemons", "oval"),
    ("Plums", "small"), ("Peaches", "round"), ("Quinces", "pear"), ("Grapes", "small"),
)


def _still_life(rng: np.random.Generator, cols: dict[str, np.ndarray], S: int) -> Scene:
    u, v = uv(S)
    t = float(rng.uniform(0.56, 0.66))  # back edge of the table top
    f = float(min(0.93, t + rng.uniform(0.18, 0.25)))  # front edge
    wall_role = choice(rng, ("sky", "mid", "light", "dark"))
    wall = cols[wall_role]
    table = cols["ground"]
    if abs(lum(table) - lum(wall)) < 0.12:
        table = mix(table, cols["dark"], 0.45)
    img = np.broadcast_to(wall, (S, S, 3)).astype(F32) * (1.05 - 0.25 * v)[..., None]
    img *= (0.94 + 0.12 * noise(rng, S, 4))[..., None]
    if rng.random() < 0.4:  # a hanging drape on one side
        side = rng.random() < 0.5
        x0, x1 = (0.0, rng.uniform(0.18, 0.3)) if side else (rng.uniform(0.7, 0.82), 1.0)
        folds = (0.8 + 0.2 * np.sin(u * 55.0 + rng.uniform(0, 6)))[..., None]
        dcol = mix(cols["accent"], cols["dark"], 0.3) if wall_role != "dark" else cols["mid"]
        paint(img, rect(u, v, x0, -0.1, x1, t + 0.02, S), dcol * folds)
    cloth = rng.random() < 0.35
    top = mix(cols["light"], table, 0.25) if cloth else table
    paint(img, below(v, F32(t), S), top * (0.85 + 0.2 * (v - F32(t)) / F32(f - t))[..., None])
    paint(img, below(v, F32(f), S), mix(top, cols["dark"], 0.45 if not cloth else 0.25))
    if cloth:
        folds = (0.85 + 0.15 * np.sin(u * 35.0))[..., None]
        img *= np.where(v > f, folds, 1.0).astype(F32)

    objects = []  # (base_y, kind, params)
    vase = rng.random() < 0.7
    flowers = vase and rng.random() < 0.45
    vx = float(rng.uniform(0.3, 0.7))
    if vase:
        objects.append((t + 0.05, "vase", vx))
    fruit_name, shape = choice(rng, _FRUITS)
    n_fruit = int(rng.integers(2, 6))
    for _ in range(n_fruit):
        fx = float(rng.uniform(0.15, 0.85))
        if vase and abs(fx - vx) < 0.1:
            fx = vx + (0.16 if fx >= vx else -0.16)
        objects.append((float(rng.uniform(t + 0.07, f - 0.03)), "fruit", fx))
    objects.sort(key=lambda o: o[0])

    vcol = cols[contrast_pick(rng, cols, wall, ("accent", "sky", "dark", "mid"), 0.2)]
    fruit_col = cols[contrast_pick(rng, cols, table, ("accent", "mid", "sky", "light"), 0.15)]
    focal = []
    for base, kind, x in objects:
        if kind == "vase":
            rx, ry = float(rng.uniform(0.08, 0.12)), float(rng.uniform(0.1, 0.14))
            cyb = base - ry
            draw_ellipse(img, x + 0.03, base, rx * 1.2, 0.025, cols["dark"], 0.45)  # shadow
            neck_top = cyb - ry - float(rng.uniform(0.06, 0.12))
            draw_rect(img, x - rx * 0.35, neck_top, x + rx * 0.35, cyb, lambda uu, vv: vcol * (
                0.9 - 0.3 * np.clip((uu - F32(x)) / F32(rx * 0.35), 0, 1))[..., None])
            draw_ellipse(img, x, neck_top, rx * 0.5, 0.015, mix(vcol, cols["light"], 0.3))
            draw_ellipse(img, x, cyb, rx, ry, vcol, shade=0.5)
            focal.append((x, cyb, ry * 1.5))
            if flowers:
                for _ in range(int(rng.integers(5, 10))):
                    px = x + float(rng.normal(0, 0.07))
                    py = neck_top - abs(float(rng.normal(0.06, 0.05)))
                    pr = float(rng.uniform(0.025, 0.045))
                    draw_ellipse(img, px, py, pr, pr, cols[choice(rng, ("accent", "light", "mid", "sky"))],
                                  shade=0.3)
                    draw_ellipse(img, px, py, pr * 0.3, pr * 0.3, cols["dark"] * 0.8 + 0.1)
                focal.append((x, neck_top - 0.07, 0.12))
        else:
            r = float(rng.uniform(0.045, 0.07)) * (0.6 if shape == "small" else 1.0)
            rx, ry = {"oval": (r * 1.3, r * 0.85), "pear": (r * 0.85, r * 1.25)}.get(shape, (r, r))
            cy = base - ry
            fc = fruit_col * F32(1.0 + rng.normal(0, 0.06))
            draw_ellipse(img, x + 0.02, base, rx * 1.2, 0.018, cols["dark"], 0.4)
            if shape == "pear":  # a smaller ball on top
                draw_ellipse(img, x, cy - ry * 0.75, rx * 0.6, ry * 0.55, fc, shade=0.45)
            draw_ellipse(img, x, cy, rx, ry, fc, shade=0.45)
            focal.append((x, cy, ry * 1.6))
    np.clip(img, 0, 1, out=img)

    vessel = choice(rng, ("Vase", "Jug", "Bottle", "Pitcher"))
    fl = fruit_name.lower()
    if flowers:
        title = choice(rng, ("Vase of Flowers", f"Flowers and {fruit_name}", "Bouquet on a Table",
                              f"Still Life with Flowers and {fruit_name}",
                              f"Flowers in a {colour_word(vcol).title()} {vessel}",
                              f"{choice(rng, ('Spring', 'Summer', 'Autumn', 'Wild', 'Garden'))} Flowers"))
        phrase = f"A still life of flowers in a vase beside {fl} on a table"
    elif vase:
        title = choice(rng, (f"Still Life with {fruit_name} and a {vessel}", f"Still Life with {fruit_name}",
                              f"The {vessel} and the {fruit_name}", f"Table with {fruit_name}",
                              f"{colour_word(vcol).title()} {vessel} with {fruit_name}",
                              f"Still Life with a {colour_word(vcol).title()} {vessel}"))
        phrase = f"A still life of a {vessel.lower()} and {fl} on a table"
    else:
        title = choice(rng, (f"Still Life with {fruit_name}", f"{fruit_name} on a Table",
                              f"Bowl of {fruit_name}", f"Kitchen Table with {fruit_name}",
                              f"{choice(rng, ('Three', 'Some', 'Ripe', 'Fallen'))} {fruit_name}",
                              f"Still Life with {colour_word(fruit_col).title()} {fruit_name}"))
        phrase = f"A still life of {fl} arranged on a table"
    phrase += ", a tablecloth in front" if cloth else ", a plain wall behind"
    return Scene(img, focal or [(0.5, t, 0.2)], phrase, title, cols)


SUBJECT_LAYOUTS = {"landscape": _landscape, "portrait": _portrait, "still-life": _still_life}

