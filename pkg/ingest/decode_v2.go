package ingest

import (
	"slices"

	"google.golang.org/protobuf/encoding/protowire"
)

// gostatsd's RawMessageV2 (proto/gostatsd.proto): fields 1-4 are maps of
// name → XTagV2, whose field 1 is a map of tags key → RawXV2.

// v2Kinds maps a RawMessageV2 field to its series kind.
var v2Kinds = [...]int{1: kCounter, 2: kGauge, 3: kSet, 4: kTimer}

// maxLinearTagKeys is how many tag keys of one name are checked for
// repeats by a scan; more go through a map.
const maxLinearTagKeys = 8

// rawV2 decodes a RawMessageV2 body. While checking, errStream means the
// body is left to the generated code.
func (d *decoder) rawV2(body []byte) error {
	var f field
	for b := body; len(b) > 0; {
		if err := nextField(&b, &f); err != nil {
			return err
		}
		if f.num < 1 || f.num > 4 || f.typ != protowire.BytesType {
			continue
		}
		if err := d.nameV2(v2Kinds[f.num], f.b); err != nil {
			return err
		}
	}
	return nil
}

// mapEntry reads a map entry: key is the string of field 1, value the
// payload of field 2 (nil when absent: an empty message).
func (d *decoder) mapEntry(b []byte) (key string, value []byte, err error) {
	var f field
	hasValue := false
	for len(b) > 0 {
		if err := nextField(&b, &f); err != nil {
			return "", nil, err
		}
		switch {
		case f.num == 1 && f.typ == protowire.BytesType:
			var ok bool
			if key, ok = d.str(&f); !ok {
				return "", nil, errStream
			}
		case f.num == 2 && f.typ == protowire.BytesType:
			if hasValue && d.checking { // pieces merged into one value
				return "", nil, errStream
			}
			value, hasValue = f.b, true
		case f.num == 1 || f.num == 2:
			return "", nil, errStream // a key of another type
		}
	}
	return key, value, nil
}

// firstSeen reports whether key is new in set, which it adds it to; only
// while checking (a repeated map key keeps only its last value).
func (d *decoder) firstSeen(set *map[string]struct{}, key string) bool {
	if !d.checking {
		return true
	}
	if *set == nil {
		*set = make(map[string]struct{})
	}
	if _, dup := (*set)[key]; dup {
		return false
	}
	(*set)[key] = struct{}{}
	return true
}

// nameV2 decodes one entry of a name map: the name and its XTagV2.
func (d *decoder) nameV2(k int, entry []byte) error {
	name, tagMap, err := d.mapEntry(entry)
	if err != nil {
		return err
	}
	if !d.firstSeen(&d.seen[k], name) {
		return errStream
	}
	defer d.forgetTagsKeys()
	var f field
	for b := tagMap; len(b) > 0; {
		if err := nextField(&b, &f); err != nil {
			return err
		}
		if f.num != 1 || f.typ != protowire.BytesType {
			continue
		}
		tagsKey, value, err := d.mapEntry(f.b)
		if err != nil {
			return err
		}
		if d.checking {
			if !d.newTagsKey(tagsKey) {
				return errStream
			}
		}
		if err := d.seriesV2(k, value); err != nil {
			return err
		}
		d.s.name = name
		d.apply(k)
	}
	return nil
}

// newTagsKey reports whether a tags key is new for the current name: a
// scan of the few first, a map beyond.
func (d *decoder) newTagsKey(key string) bool {
	if len(d.seenTags) >= maxLinearTagKeys {
		if len(d.seenTags) == maxLinearTagKeys {
			if d.tagSet == nil {
				d.tagSet = make(map[string]struct{})
			}
			for _, k := range d.seenTags {
				d.tagSet[k] = struct{}{}
			}
		}
		if _, dup := d.tagSet[key]; dup {
			return false
		}
		d.tagSet[key] = struct{}{}
	} else if slices.Contains(d.seenTags, key) {
		return false
	}
	d.seenTags = append(d.seenTags, key)
	return true
}

// forgetTagsKeys forgets the tags keys of the current name.
func (d *decoder) forgetTagsKeys() {
	if len(d.seenTags) > maxLinearTagKeys {
		for _, k := range d.seenTags {
			delete(d.tagSet, k)
		}
	}
	clear(d.seenTags)
	d.seenTags = d.seenTags[:0]
}

// seriesV2 decodes a RawCounterV2, RawGaugeV2, RawSetV2 or RawTimerV2 into
// d.s (all but the name). Each field is one case: a new field is one more.
func (d *decoder) seriesV2(k int, b []byte) error {
	s := &d.s
	s.reset()
	var f field
	for len(b) > 0 {
		if err := nextField(&b, &f); err != nil {
			return err
		}
		ok := true
		switch {
		case f.num == 1 && f.typ == protowire.BytesType: // Tags
			var t string
			t, ok = d.str(&f)
			s.tags = append(s.tags, t)
		case f.num == 2 && f.typ == protowire.BytesType: // Hostname
			s.source, ok = d.str(&f)
		case f.num == 3 && k == kCounter && f.typ == protowire.VarintType: // Value int64
			s.value = float64(int64(f.u))
		case f.num == 3 && k == kGauge: // Value double
			if v, isDouble := f.double(); isDouble {
				s.value = v
			}
		case f.num == 3 && k == kSet && f.typ == protowire.BytesType: // Values
			var m string
			m, ok = d.str(&f)
			s.members = append(s.members, m)
		case f.num == 3 && k == kTimer: // SampleCount
			if v, isDouble := f.double(); isDouble {
				s.sampleCount = v
			}
		case f.num == 4 && k == kTimer: // Values
			s.values, ok = f.appendDoubles(s.values)
		}
		if !ok {
			return errStream
		}
	}
	return nil
}
