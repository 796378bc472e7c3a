//! Conversation statuses (CORE-6): three built-in ones and the admin's custom statuses, each of
//! which behaves like one of the three bases. A conditional status names the properties that
//! must be filled in before a conversation may take it.

use super::kinds::text_enum;

text_enum!(
    /// What a status means to the product (CC-9's "closed → new conversation", the ticket list, …).
    StatusBase {
        Open => "open",
        Pending => "pending",
        Closed => "closed",
    }
);

/// The properties a conditional status may require.
pub const REQUIRABLE_FIELDS: &[&str] = &["assignee", "team", "subject", "tags"];

/// What is filled in on a conversation, as far as status conditions care.
#[derive(Debug, Clone, Default)]
pub struct FilledIn<'a> {
    pub assignee: bool,
    pub team: bool,
    pub subject: bool,
    pub tags: bool,
    /// Names of custom fields holding a non-empty value.
    pub custom_fields: &'a [String],
}

/// Whether `field` is something a status may require: one of [`REQUIRABLE_FIELDS`] or
/// `custom:{name}`.
pub fn is_requirable(field: &str) -> bool {
    REQUIRABLE_FIELDS.contains(&field) || field.strip_prefix("custom:").is_some_and(super::text::is_valid_key)
}

/// The required fields that are still empty, in the order the status lists them.
pub fn missing_required_fields(required: &[String], filled: &FilledIn<'_>) -> Vec<String> {
    required
        .iter()
        .filter(|field| {
            let present = match field.as_str() {
                "assignee" => filled.assignee,
                "team" => filled.team,
                "subject" => filled.subject,
                "tags" => filled.tags,
                other => {
                    other.strip_prefix("custom:").is_some_and(|name| filled.custom_fields.iter().any(|f| f == name))
                }
            };
            !present
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_6_conditional_status_lists_what_is_missing() {
        let required = vec!["team".to_string(), "custom:order".to_string(), "assignee".to_string()];
        let fields = vec!["order".to_string()];
        let filled = FilledIn { team: false, assignee: true, custom_fields: &fields, ..Default::default() };
        assert_eq!(missing_required_fields(&required, &filled), vec!["team".to_string()]);
        let all = FilledIn { team: true, assignee: true, custom_fields: &fields, ..Default::default() };
        assert!(missing_required_fields(&required, &all).is_empty());
        assert_eq!(
            missing_required_fields(&required, &FilledIn::default()),
            required,
            "nothing filled: everything missing, in order"
        );
    }

    #[test]
    fn requirable_fields() {
        assert!(is_requirable("team"));
        assert!(is_requirable("custom:order_no"));
        assert!(!is_requirable("custom:"));
        assert!(!is_requirable("custom:  "));
        assert!(!is_requirable("custom:Bad Name"), "only names a conversation's custom field can have");
        assert!(!is_requirable("colour"));
    }
}
