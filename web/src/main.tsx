import { render } from 'preact';
import { App } from './App';
import { prefetchTickets } from './pages/Tickets';
import { loadInbox, onNotification, onNotificationsRead, resetInbox } from './inbox';
import { boot, plugInbox } from './state';
import './styles.css';

prefetchTickets();
render(<App />, document.getElementById('app')!);
plugInbox({ reset: resetInbox, load: loadInbox, notified: onNotification, read: onNotificationsRead });
boot();
