//! The English templates that ship (TP-1): what a notification says until an admin edits it.

use super::TemplateKind;

/// The default `(subject, body)` of `kind`.
pub fn defaults(kind: TemplateKind) -> (&'static str, &'static str) {
    match kind {
        TemplateKind::TicketConfirmation => (
            "[#TicketID#] We received your request: #Subject#",
            "<p>Hello #From#,</p>\
             <p>Thank you for contacting us. Your request has been received and a ticket has been opened; \
             an agent will get back to you soon.</p>\
             <p><strong>Ticket:</strong> ##TicketID# – #Subject#<br><strong>Status:</strong> #Status#</p>\
             #Body#\
             #Recent_Attachments#\
             <p>You can follow your ticket here: <a href=\"#URL#\">#URL#</a></p>\
             <p>To add information, simply reply to this email.</p>",
        ),
        TemplateKind::TicketClosed => (
            "[#TicketID#] Your ticket was closed: #Subject#",
            "<p>Hello #From#,</p>\
             <p>#What_Happened#</p>\
             <p><strong>Ticket:</strong> ##TicketID# – #Subject#</p>\
             #RatingLinks#\
             <p>If your issue is not resolved, reply to this email and the ticket will be looked at again.</p>\
             <p><a href=\"#URL#\">View the ticket</a></p>\
             #Unsubscribe#",
        ),
        TemplateKind::TicketUpdated => (
            "[#TicketID#] Ticket updated: #Subject#",
            "<p>#What_Happened#</p>\
             #Recent_Attachments#\
             <p><strong>Ticket:</strong> ##TicketID# – #Subject# (#Status#)</p>\
             <h3>Recent messages</h3>\
             #Recent_messages#\
             <p><a href=\"#URL#\">View the ticket</a> · reply to this email to answer.</p>\
             #Unsubscribe#",
        ),
        TemplateKind::NewTicketAdmin => (
            "[#TicketID#] New ticket from #From#: #Subject#",
            "<p>A new ticket was submitted via #Via# by #From# (#FromEmail#).</p>\
             <p><strong>Ticket:</strong> ##TicketID# – #Subject#<br>\
             <strong>Category:</strong> #Category#<br><strong>Priority:</strong> #Priority#</p>\
             #Body#\
             #Recent_Attachments#\
             #Custom_Fields#\
             <p><a href=\"#URL#\">Open the ticket</a></p>",
        ),
        TemplateKind::NewTicketCategory => (
            "[#TicketID#] New ticket in #Category#: #Subject#",
            "<p>#What_Happened#</p>\
             <p><strong>Ticket:</strong> ##TicketID# – #Subject#<br>\
             <strong>From:</strong> #From# (#FromEmail#)<br><strong>Category:</strong> #Category#<br>\
             <strong>Priority:</strong> #Priority#</p>\
             #Body#\
             #Recent_Attachments#\
             <p><a href=\"#URL#\">Open the ticket</a></p>",
        ),
        TemplateKind::CustomerUpdate => (
            "[#TicketID#] #From# updated: #Subject#",
            "<p>#What_Happened#</p>\
             #Recent_Attachments#\
             <p><strong>Ticket:</strong> ##TicketID# – #Subject# (#Status#)<br>\
             <strong>Category:</strong> #Category#<br><strong>Assigned to:</strong> #Technician#</p>\
             <p><a href=\"#URL#\">Open the ticket</a></p>",
        ),
        TemplateKind::TicketTaken => (
            "[#TicketID#] #Technician# took: #Subject#",
            "<p>#What_Happened#</p>\
             <p><strong>Ticket:</strong> ##TicketID# – #Subject#<br>\
             <strong>Category:</strong> #Category#<br><strong>Now handled by:</strong> #Technician#</p>\
             <p><a href=\"#URL#\">Open the ticket</a></p>",
        ),
        TemplateKind::KbArticleChanged => (
            "Knowledge-base article changed in #Category#",
            "<p>#What_Happened#</p>\
             <p><strong>Category:</strong> #Category#<br><strong>Changed by:</strong> #Originator#</p>\
             <p><a href=\"#URL#\">Open the article</a></p>",
        ),
        TemplateKind::Welcome => (
            "Welcome to our help desk",
            "<p>Hello,</p>\
             <p>An account was created for you at our help desk. Your user name is <strong>#username</strong>.</p>\
             <p>Sign in and follow your tickets here: <a href=\"#URL\">#URL</a></p>",
        ),
        TemplateKind::PasswordReset => (
            "Reset your password",
            "<p>Hello #From#,</p>\
             <p>#What_Happened#</p>\
             <p><a href=\"#URL#\">Choose a new password</a></p>\
             <p>If you did not ask for this, you can ignore this email; your password stays as it is.</p>",
        ),
    }
}
