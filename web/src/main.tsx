import { render } from 'preact';
import { App } from './App';
import { prefetchTickets } from './pages/Tickets';
import { boot } from './state';
import './styles.css';

prefetchTickets();
render(<App />, document.getElementById('app')!);
boot();
