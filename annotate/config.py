"""The Label Studio view of a clip pair, and the project settings that keep reviewers independent.

One layout serves both projects (review and adjudication): the reference, the other clip and their
exposure-normalised difference play side by side in one sync group; a side column holds the verdict, the
reasons, the defect timeline label, notes, the settings table (requested / read-back / EXIF for both clips),
the automatic QC as plain information and the keyboard shortcuts. Sized for a 1366x768 laptop: Label Studio's
own side panels are hidden so the players get the width, and no control starts selected.
"""

from __future__ import annotations

from typing import Any

REJECT_REASONS = ("misaligned", "scene_changed", "exposure_clipped", "focus_missed", "flicker", "other")
VERDICTS = ("accept", "reject")

# Keys the view lists; the per-choice hotkeys are set below, the rest are Label Studio 1.23 defaults
# (web/libs/editor/src/core/settings/keymap.json). A step moves by the "Video hop size" of the labeling
# settings (10 frames unless changed, ls#8663): set it to 1 for frame-by-frame, or type a frame number.
SHORTCUTS = (
    ("a / r", "accept / reject"),
    ("Alt+Space", "play / pause all three"),
    ("Alt+Left / Right", "step back / forward (by the hop size)"),
    ("Settings (bottom bar)", "Video hop size 1 = one frame per step"),
    ("click 'N of M'", "type a frame number"),
    ("Ctrl+Enter", "submit (refused without a verdict)"),
)

PLAYER_HEIGHT = 220      # px: three players and their timelines fit under Label Studio's top bar at 768 px
SIDE_WIDTH = 330         # px: verdict, reasons, settings table

_STYLE = f"""
  <Style>
    .lsf-sidepanels__wrapper {{ display: none !important; }}
    .lsf-sidepanels {{ padding-left: 0 !important; padding-right: 0 !important; }}
    .cc-players .lsf-timeline-controls__time {{ display: none !important; }}
    .cc-wrap {{ display: flex; gap: 8px; align-items: flex-start; width: 100%; }}
    .cc-players {{ flex: 1 1 auto; min-width: 0; display: grid; grid-template-columns: repeat(3, minmax(0, 1fr));
                  gap: 6px; }}
    .cc-players .lsf-object {{ min-width: 0; overflow: hidden; }}
    .cc-players .lsf-timeline-controls button:not([aria-label]),
    .cc-players button[aria-label="Hop backward"], .cc-players button[aria-label="Hop forward"] {{
      display: none !important; }}
    .cc-players .lsf-frames-control {{ width: auto !important; min-width: 0 !important; padding: 0 6px !important; }}
    .cc-side {{ flex: 0 0 {SIDE_WIDTH}px; font-size: 12px; }}
    .cc-side .lsf-choices {{ margin: 2px 0 !important; }}
    .cc-title h1, .cc-title h2, .cc-title h3, .cc-title h4, .cc-title h5, .cc-title h6 {{
      font-size: 13px !important; line-height: 18px !important; margin: 0 0 2px !important; white-space: nowrap;
      overflow: hidden; text-overflow: ellipsis; }}
    .cc-change h1, .cc-change h2, .cc-change h3, .cc-change h4, .cc-change h5, .cc-change h6 {{
      font-size: 15px !important; line-height: 20px !important; margin: 0 0 4px !important; }}
    .cc-table {{ margin: 4px 0; max-height: 170px; overflow: auto; }}
    .cc-table table {{ border-collapse: collapse; width: 100%; font-size: 11px; line-height: 14px; }}
    .cc-table th, .cc-table td {{ border: 1px solid #ddd; padding: 1px 3px; text-align: left; white-space: nowrap; }}
    .cc-table .cc-changed {{ background: #fff1c2; font-weight: 600; }}
    .cc-table .cc-mismatch {{ color: #b00020; }}
    .cc-muted {{ color: #666; font-size: 11px; }}
    .cc-side p {{ font-size: 12px; line-height: 16px; margin: 2px 0; }}
  </Style>"""


def _player(name: str, title_var: str) -> str:
    return (f'      <View><View className="cc-title"><Header value="${title_var}"/></View>\n'
            f'        <Video name="{name}" value="${name}" sync="pair" frameRate="$fps" muted="true" '
            f'height="{PLAYER_HEIGHT}"/></View>\n')


def label_config(*, adjudication: bool = False) -> str:
    """The review view; with `adjudication`, the earlier verdicts (by account) follow the verdict."""
    reasons = "".join(f'      <Choice value="{r}"/>\n' for r in REJECT_REASONS)
    keys = _escape_attr("<table>" + "".join(f"<tr><td>{k}</td><td>{what}</td></tr>" for k, what in SHORTCUTS)
                        + "</table>")
    earlier = ('    <View className="cc-table"><HyperText name="earlier" value="$earlier_html" inline="true"/></View>\n'
               if adjudication else "")
    return f"""<View>{_STYLE}
  <View className="cc-wrap">
    <View className="cc-players">
{_player("video_a", "title_a")}{_player("video_b", "title_b")}{_player("video_diff", "title_diff")}    </View>
    <View className="cc-side">
    <View className="cc-change"><Header value="$change"/></View>
    <Choices name="verdict" toName="video_a" choice="single-radio" required="true" showInline="true"
             requiredMessage="Choose accept or reject before submitting.">
      <Choice value="accept" hotkey="a"/><Choice value="reject" hotkey="r"/></Choices>
    <Choices name="reasons" toName="video_b" choice="multiple" showInline="true"
             visibleWhen="choice-selected" whenTagName="verdict" whenChoiceValue="reject">
{reasons}    </Choices>
{earlier}    <TimelineLabels name="defects" toName="video_b"><Label value="defective"/></TimelineLabels>
    <Rating name="effect_clarity" toName="video_b" maxRating="5" icon="star" size="small"/>
    <TextArea name="notes" toName="video_a" rows="1" editable="true" placeholder="Notes (optional)"/>
    <View className="cc-table"><HyperText name="settings" value="$settings_html" inline="true"/></View>
    <View className="cc-table"><HyperText name="qc" value="$qc_html" inline="true"/></View>
    <View className="cc-table cc-muted"><HyperText name="keys" value="{keys}" inline="true"/></View>
    </View>
  </View>
</View>"""


def _escape_attr(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


REVIEW_CONFIG = label_config()
ADJUDICATION_CONFIG = label_config(adjudication=True)

# Project settings cinectrl owns: set at creation, checked (and restored) on every push and pull, because any
# member of a Community-edition organization can change them. `maximum_annotations` is added per project.
DEFAULT_OVERLAP = 2      # verdicts per pair of a new review project (the gate's quorum)

PROJECT_SETTINGS: dict[str, Any] = {
    "show_collab_predictions": False,              # no model output shown, nothing pre-selected
    "reveal_preannotations_interactively": False,
    "show_annotation_history": False,              # an annotator's stream shows only their own annotation
    "enable_empty_annotation": False,              # a submit with nothing chosen is refused
    "show_skip_button": False,
    "show_instruction": False,
}
