//! Who may see what: the permission matrix of the source notice ("Who uses it"), one table
//! of role × field group × action plus each role's row scope. The store enforces it (reads
//! filtered by scope, writes refused), so no handler can forget it; the tests are generated
//! from the same table.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    MinistryAdmin,
    /// 利用者認証実施者: issues and manages IDs inside their body; no personal data.
    AuthOfficer,
    HealthCentreStaff,
    PrefectureStaff,
    MedicalInstitution,
    Contractor,
    LodgingFacility,
    Analyst,
}

impl Role {
    pub const ALL: [Role; 8] = [
        Role::MinistryAdmin,
        Role::AuthOfficer,
        Role::HealthCentreStaff,
        Role::PrefectureStaff,
        Role::MedicalInstitution,
        Role::Contractor,
        Role::LodgingFacility,
        Role::Analyst,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::MinistryAdmin => "ministry_admin",
            Role::AuthOfficer => "auth_officer",
            Role::HealthCentreStaff => "health_centre_staff",
            Role::PrefectureStaff => "prefecture_staff",
            Role::MedicalInstitution => "medical_institution",
            Role::Contractor => "contractor",
            Role::LodgingFacility => "lodging_facility",
            Role::Analyst => "analyst",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The ID chain [ID発行の流れ]: the roles whose IDs this role issues, suspends and resets.
    /// The ministry manages the user-authentication officers; an officer manages the staff
    /// and outside bodies of their own health centre — never the ministry, the prefecture,
    /// the analyst or another officer. Nobody else manages IDs.
    pub fn manages(self) -> &'static [Role] {
        match self {
            Role::MinistryAdmin => &[Role::AuthOfficer],
            Role::AuthOfficer => &[
                Role::HealthCentreStaff,
                Role::Contractor,
                Role::LodgingFacility,
                Role::MedicalInstitution,
            ],
            _ => &[],
        }
    }

    /// The kind of outside body an ID of this role acts for, if any.
    pub fn organisation_kind(self) -> Option<&'static str> {
        match self {
            Role::Contractor => Some("contractor"),
            Role::LodgingFacility => Some("lodging_facility"),
            Role::MedicalInstitution => Some("medical_institution"),
            _ => None,
        }
    }
}

/// The field groups of a record [管理可能項目].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldGroup {
    Basic,
    Welfare,
    Household,
    Memo,
    Interview,
    UnderlyingConditions,
    Tests,
    OccurrenceReport,
    Admission,
    Residence,
    HealthObservation,
    CareContacts,
    ReleaseDate,
    Severity,
    BehaviourHistory,
    Contacts,
    InfectionLink,
}

impl FieldGroup {
    pub const ALL: [FieldGroup; 17] = [
        FieldGroup::Basic,
        FieldGroup::Welfare,
        FieldGroup::Household,
        FieldGroup::Memo,
        FieldGroup::Interview,
        FieldGroup::UnderlyingConditions,
        FieldGroup::Tests,
        FieldGroup::OccurrenceReport,
        FieldGroup::Admission,
        FieldGroup::Residence,
        FieldGroup::HealthObservation,
        FieldGroup::CareContacts,
        FieldGroup::ReleaseDate,
        FieldGroup::Severity,
        FieldGroup::BehaviourHistory,
        FieldGroup::Contacts,
        FieldGroup::InfectionLink,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Action {
    Read,
    Write,
}

/// Which people a role's users may see at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Scope {
    /// Everyone of their own health centre.
    Jurisdiction,
    /// Everyone held by any health centre of their prefecture.
    Prefecture,
    /// People assigned to their organisation (own patients, or people followed up).
    Assigned,
    /// No person-level access (IDs, statistics).
    NoPersons,
}

pub fn scope(role: Role) -> Scope {
    match role {
        Role::HealthCentreStaff => Scope::Jurisdiction,
        Role::PrefectureStaff => Scope::Prefecture,
        Role::MedicalInstitution | Role::Contractor | Role::LodgingFacility => Scope::Assigned,
        Role::MinistryAdmin | Role::AuthOfficer | Role::Analyst => Scope::NoPersons,
    }
}

/// The matrix. Interpretations where the notice is terse are noted.
pub fn allowed(role: Role, group: FieldGroup, action: Action) -> bool {
    use FieldGroup as G;
    match role {
        Role::HealthCentreStaff => true,
        // Read everything held in the prefecture; write residence only.
        Role::PrefectureStaff => action == Action::Read || group == G::Residence,
        // Tests, diagnosis (interview, underlying conditions), occurrence report, admission;
        // basic information because filing an occurrence report creates the person. Never
        // behaviour history.
        Role::MedicalInstitution => matches!(
            group,
            G::Basic
                | G::Interview
                | G::UnderlyingConditions
                | G::Tests
                | G::OccurrenceReport
                | G::Admission
        ),
        // Health observation only (read and write: they take observations by phone), plus
        // reading basic information to identify and phone the person. Never infection route,
        // behaviour history or residence.
        Role::Contractor | Role::LodgingFacility => {
            group == G::HealthObservation || (group == G::Basic && action == Action::Read)
        }
        Role::MinistryAdmin | Role::AuthOfficer | Role::Analyst => false,
    }
}

/// Who is asking, as the store needs to know it.
#[derive(Debug, Clone, Copy)]
pub struct Viewer {
    pub staff_id: i64,
    pub role: Role,
    pub health_centre_id: i64,
    pub organisation_id: Option<i64>,
}

impl Viewer {
    pub fn may(&self, group: FieldGroup, action: Action) -> bool {
        allowed(self.role, group, action)
    }

    /// SQL condition limiting persons `p` to this viewer's rows; `$V1` is replaced by the
    /// viewer's health centre, `$V2` by their organisation (bound as literals: both are ids
    /// from the session, never user input).
    pub fn row_condition(&self) -> String {
        let org = self.organisation_id.unwrap_or(-1);
        match scope(self.role) {
            // Their own people, and those shared with them as a related health centre.
            Scope::Jurisdiction => format!(
                "(p.health_centre_id = {c} OR EXISTS (SELECT 1 FROM person_shares ps WHERE ps.person_id = p.id AND ps.health_centre_id = {c}))",
                c = self.health_centre_id
            ),
            Scope::Prefecture => format!(
                "p.health_centre_id IN (SELECT h2.id FROM health_centres h2 WHERE h2.prefecture <> '' AND h2.prefecture =
                   (SELECT h3.prefecture FROM health_centres h3 WHERE h3.id = {}))",
                self.health_centre_id
            ),
            // A health centre may keep its people to government staff only.
            Scope::Assigned => format!(
                "EXISTS (SELECT 1 FROM person_assignments pa WHERE pa.person_id = p.id AND pa.organisation_id = {org})
                 AND NOT EXISTS (SELECT 1 FROM health_centres hg WHERE hg.id = p.health_centre_id AND hg.government_only = TRUE)"
            ),
            Scope::NoPersons => "1 = 0".into(),
        }
    }
}

/// **Who is touching a person's data — a value every store function for personal data
/// requires** (never an `Option`): a staff member, whose row scope and field groups the store
/// enforces; the page of a person a staff member has just opened; or the product itself,
/// named as the actor its audit rows carry.
#[derive(Debug, Clone, Copy)]
pub enum Access<'a> {
    /// A staff member: scope and field group checked, every read and write audited as them.
    Staff(&'a Viewer),
    /// The person page of a staff member: `store::persons::open` checked the scope and audited
    /// the view once; what the page reads next is checked against the field groups only and
    /// must be about the same person.
    Opened(&'a Opened),
    /// The product acting on its own: a worker, a webhook, the CLI, or the person answering
    /// through their own signed link or call (`Actor::Person`). Audited as that actor.
    System(crate::store::Actor),
}

impl Access<'_> {
    /// The actor audit rows carry.
    pub fn actor(&self) -> crate::store::Actor {
        match self {
            Access::Staff(v) => crate::store::Actor::Staff(v.staff_id),
            Access::Opened(o) => crate::store::Actor::Staff(o.viewer.staff_id),
            Access::System(a) => *a,
        }
    }

    /// The staff member behind this access, if any (for field filtering).
    pub fn viewer(&self) -> Option<&Viewer> {
        match self {
            Access::Staff(v) => Some(v),
            Access::Opened(o) => Some(&o.viewer),
            Access::System(_) => None,
        }
    }
}

/// Proof that a staff member's view of one person was checked against their row scope and
/// audited. Only the store makes one (`store::persons::open`).
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    viewer: Viewer,
    person_id: i64,
}

impl Opened {
    pub(crate) fn new(viewer: Viewer, person_id: i64) -> Opened {
        Opened { viewer, person_id }
    }
    pub fn viewer(&self) -> &Viewer {
        &self.viewer
    }
    pub fn person_id(&self) -> i64 {
        self.person_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_notice_in_a_few_lines() {
        use FieldGroup as G;
        assert!(allowed(Role::PrefectureStaff, G::Residence, Action::Write));
        assert!(!allowed(
            Role::PrefectureStaff,
            G::HealthObservation,
            Action::Write
        ));
        assert!(!allowed(
            Role::MedicalInstitution,
            G::BehaviourHistory,
            Action::Read
        ));
        for g in [G::InfectionLink, G::BehaviourHistory, G::Residence] {
            assert!(!allowed(Role::Contractor, g, Action::Read));
            assert!(!allowed(Role::LodgingFacility, g, Action::Read));
        }
        assert!(allowed(
            Role::Contractor,
            G::HealthObservation,
            Action::Write
        ));
        assert!(!allowed(Role::Contractor, G::Basic, Action::Write));
        let cells = Role::ALL.len() * FieldGroup::ALL.len() * 2;
        assert_eq!(cells, 272);
        assert!(
            FieldGroup::ALL
                .iter()
                .all(|g| !allowed(Role::Analyst, *g, Action::Read))
        );
    }
}
