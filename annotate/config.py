"""The labeling config: two clips side by side in one sync group, capture settings, verdict and reasons."""

REJECT_REASONS = ("misaligned", "scene_changed", "exposure_clipped", "focus_missed", "flicker", "other")

LABEL_CONFIG = """<View>
  <View style="display:flex; gap:8px">
    <View style="flex:50%"><Header value="Reference: $label_a"/>
      <Video name="video_a" value="$video_a" sync="pair" frameRate="$fps" muted="true"/></View>
    <View style="flex:50%"><Header value="Other: $label_b"/>
      <Video name="video_b" value="$video_b" sync="pair" frameRate="$fps" muted="true"/></View>
  </View>
  <Table name="capture" value="$capture"/>
  <Header value="Verdict"/>
  <Choices name="verdict" toName="video_a" choice="single-radio" required="true" showInline="true">
    <Choice value="accept" hotkey="a"/><Choice value="reject" hotkey="r"/></Choices>
  <Choices name="reasons" toName="video_b" choice="multiple" showInline="true"
           visibleWhen="choice-selected" whenTagName="verdict" whenChoiceValue="reject">
""" + "".join(f'    <Choice value="{r}"/>\n' for r in REJECT_REASONS) + """  </Choices>
  <Header value="How clearly does the effect show? (1-5)"/>
  <Rating name="effect_clarity" toName="video_b" maxRating="5" icon="star"/>
  <TimelineLabels name="defects" toName="video_b"><Label value="defective"/></TimelineLabels>
  <TextArea name="notes" toName="video_a" rows="2" editable="true" placeholder="Notes"/>
</View>"""
